"""The edit rules, plain Python: words counted with the attacks' tokenizer, the budget as the attacks compute it,
separators kept, the similarity floor."""

from __future__ import annotations

import pytest

from app.errors import Invalid
from app.game.fool_text import rules, texts

ORIGINAL = "small elevation on the grinding surface of a tooth"  # 9 words: a 0.25 budget allows 2


def test_the_budget_is_the_attacks_budget() -> None:
    from app.ml.text.attacks import max_changes

    for n in range(0, 45):
        for budget in (0.05, 0.1, 0.2, 0.25, 1 / 3, 0.5, 1.0):
            assert rules.max_changes(n, budget) == max_changes(n, budget), (n, budget)


def test_the_game_names_the_text_opponents_the_ml_core_has() -> None:
    from app.ml.packs.text.definitions import definitions_pack
    from app.ml.text.opponents import TEXT_OPPONENTS

    assert set(texts.OPPONENTS) == set(TEXT_OPPONENTS)
    assert texts.CLASS_NAMES == definitions_pack().class_names


@pytest.mark.parametrize(
    ("edited", "changed"),
    [
        (ORIGINAL, 0),
        ("little elevation on the grinding surface of a tooth", 1),  # replaced
        ("Small Elevation on the grinding surface of a tooth", 0),  # case: neither opponent reads it
        ("small elevation on the grinding surface of a molar tooth", 1),  # inserted
        ("small elevation on grinding surface of a tooth", 1),  # deleted
        ("little bump on the chewing surface of a tooth", 3),
        ("smlal elevation on the grinding surface of a tooth", 1),  # a typo changes the word
        ("a b c d e f g h i j k l", 12),  # a replaced run counts its longer side
    ],
)
def test_words_changed_is_the_word_level_edit_distance(edited: str, changed: int) -> None:
    assert rules.words_changed(ORIGINAL, edited) == changed


def test_only_words_may_change() -> None:
    original = "a domesticated mammal kept as a pet, often ___ (canine)"
    assert rules.measure_edit(original, "a tame mammal kept as a pet,  often ___ (canine)", 0.25).separators_kept
    for cheat in (
        "a domesticated mammal kept as a pet!!! often ___ (canine)",
        "a domesticated mammal kept as a pet, often (canine)",
        "a domesticated mammal kept as a pet, often ___ (canine) 1999",
        "a domesticated mammal kept as a pet, often ___ (canine",
    ):
        assert not rules.measure_edit(original, cheat, 0.25).separators_kept, cheat


def test_the_problems_name_every_broken_rule() -> None:
    fine = rules.measure_edit(ORIGINAL, "little elevation on the grinding surface of a tooth", 0.25)
    assert fine.within_budget and fine.allowed == 2 and fine.share == pytest.approx(1 / 9)
    assert rules.rule_problems(fine, similarity=0.95, floor=0.8) == []
    over = rules.measure_edit(ORIGINAL, "little bump on the chewing surface of a tooth", 0.25)
    assert not over.within_budget
    problems = rules.rule_problems(over, similarity=0.5, floor=0.8)
    assert problems == [
        rules.EDIT_OVER_BUDGET.format(changed=3, allowed=2, total=9),
        rules.EDIT_BELOW_FLOOR.format(similarity=0.5, floor=0.8),
    ]
    same = rules.measure_edit(ORIGINAL, ORIGINAL, 0.25)
    assert rules.rule_problems(same, similarity=1.0, floor=0.8) == [rules.EDIT_UNCHANGED]
    # exactly at the floor is allowed, as in the attacks (similarity >= floor)
    assert rules.rule_problems(fine, similarity=0.8, floor=0.8) == []


def test_an_edit_is_a_bounded_non_blank_string() -> None:
    assert rules.clean_edit("  little\nelevation \t on  ") == "little elevation on"
    for bad in ("", "   ", None, 3, ["a"]):
        with pytest.raises(Invalid, match="Write your edit"):
            rules.clean_edit(bad)
    with pytest.raises(Invalid, match="at most"):
        rules.clean_edit("word " * 200)

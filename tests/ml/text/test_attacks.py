"""Word-level attacks: budget, similarity floor, query counting, seeded reproducibility."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from app.ml.packs.text.definitions import TextPack
from app.ml.packs.text.tokens import words
from app.ml.text import attacks
from app.ml.text.opponents import TextOpponent

N = 6
BUDGET = 0.25


class Spy:
    """Counts every text the attack shows the opponent, independently of the attack's own counter."""

    def __init__(self, opponent: TextOpponent) -> None:
        self.opponent, self.name, self.class_names = opponent, opponent.name, opponent.class_names
        self.calls: list[int] = []

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return self.opponent.predict_proba(texts)


def check_result(result: attacks.TextAttackResult, budget: float, floor: float) -> None:
    assert len(result.changed) <= attacks.max_changes(result.n_words, budget)
    assert result.n_words == len(words(result.original)) == len(words(result.text))
    changed = [i for i, (a, b) in enumerate(zip(words(result.original), words(result.text), strict=True)) if a != b]
    assert changed == list(result.changed)
    if result.changed:
        assert result.similarity >= floor


@pytest.mark.parametrize("attack", ["textfooler", "deepwordbug"])
def test_greedy_attacks_respect_budget_floor_and_count_queries(
    attack: str, tfidf: TextOpponent, pack: TextPack
) -> None:
    spy = Spy(tfidf)
    results = getattr(attacks, attack)(spy, pack.test.texts[:N], pack.test.labels[:N], BUDGET, seed=0)
    floor = attacks.SYNONYM_FLOOR if attack == "textfooler" else attacks.CHARACTER_FLOOR
    for result in results:
        check_result(result, BUDGET, floor)
        assert result.queries >= 1
        assert result.success == (result.answer != result.label)
    assert sum(r.queries for r in results) == sum(spy.calls)
    assert any(r.changed for r in results)
    assert tfidf.predict_proba([results[0].text])[0].max() == pytest.approx(results[0].confidence)


def test_per_text_budgets_and_zero_budget(tfidf: TextOpponent, pack: TextPack) -> None:
    texts, labels = pack.test.texts[:2], pack.test.labels[:2]
    results = attacks.textfooler(tfidf, texts, labels, [0.0, 0.5], seed=0)
    assert results[0].text == texts[0] and not results[0].changed and results[0].similarity == 1.0
    check_result(results[1], 0.5, attacks.SYNONYM_FLOOR)


def test_seeded_attacks_reproduce(tfidf: TextOpponent, pack: TextPack) -> None:
    texts, labels = pack.test.texts[:N], pack.test.labels[:N]
    first = attacks.deepwordbug(tfidf, texts, labels, BUDGET, seed=3)
    again = attacks.deepwordbug(tfidf, texts, labels, BUDGET, seed=3)
    assert [r.text for r in first] == [r.text for r in again]
    alone = attacks.deepwordbug(tfidf, texts[2:3], labels[2:3], BUDGET, seed=3)
    assert alone[0].text == first[2].text  # seeded by the text, not by its place in the batch
    control = attacks.random_synonyms(tfidf, texts, labels, [2] * N, seed=1)
    assert [r.text for r in control] == [r.text for r in attacks.random_synonyms(tfidf, texts, labels, [2] * N, 1)]


def test_character_edits_keep_first_and_last_letters() -> None:
    rng = np.random.default_rng(0)
    for edit in attacks.character_edits("elevation", rng):
        assert edit[0] == "e" and edit[-1] == "n" and edit != "elevation" and abs(len(edit) - 9) <= 1
    assert attacks.character_edits("the", rng) == []


def test_transfer_and_control_ask_the_target_once(tfidf: TextOpponent, minilm: TextOpponent, pack: TextPack) -> None:
    texts, labels = pack.test.texts[:3], pack.test.labels[:3]
    for result in attacks.transfer(minilm, tfidf, texts, labels, BUDGET, seed=0):
        assert result.queries == 1 and result.surrogate_queries >= 1
        check_result(result, BUDGET, attacks.SYNONYM_FLOOR)
    for result, count in zip(attacks.random_synonyms(tfidf, texts, labels, [1, 2, 0], seed=0), [1, 2, 0], strict=True):
        assert result.queries == 1 and len(result.changed) <= count
        check_result(result, 1.0, attacks.SYNONYM_FLOOR)

"""The rules of an edit, re-checked by the server on every check and on submit (the page's figures are only a view).

* Words are counted with the tokenizer the word-level attacks use (app/ml/packs/text/tokens.py: a word is a run of
  letters; everything else is a separator that attacks never touch and budgets never count).
* Words changed: the word-level edit distance between the original and the edited text (the fewest words
  replaced, inserted or deleted), case ignored, since neither opponent reads
  case. The share is that count over the original's words, and the budget allows ``floor(budget x words)`` of them,
  as app/ml/text/attacks.max_changes does for the attacks.
* Separators stay: only words may change. Apart from white space, the punctuation, digits and the pack's ``___``
  blank must be the original's, in order, or a player could fool the model with "!!!" at no cost in words.
* The sentence similarity (the model service's all-MiniLM-L6-v2 cosine) must stay at or above the attacks' floor.
* A round is won when all of this holds and the opponent's answer on the edit differs from its (correct) answer on
  the original.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.errors import Invalid
from app.ml.packs.text.tokens import is_word, tokenize, words
from app.ml.service.text_edit_contracts import MAX_TEXT_CHARS

DEFAULT_BUDGET = 0.25  # a quarter of the words: 2 of a definition's 8 words, 5 of 20

EDIT_EMPTY = "Write your edit of the definition first."
EDIT_TOO_LONG = f"An edit is at most {MAX_TEXT_CHARS} characters."
EDIT_UNCHANGED = "Change at least one word: the machine already knows the original."
EDIT_OVER_BUDGET = "You changed {changed} words; this round allows {allowed} of the {total}."
EDIT_SEPARATORS = "Only words may change: keep the punctuation, digits and the ___ blank as they were."
EDIT_BELOW_FLOOR = "The edit says something too different (similarity {similarity:.2f}, the floor is {floor:.2f})."
EDIT_NOT_FOOLED = "The machine still answers {answer}: change a word that matters more to it."


def max_changes(n_words: int, budget: float) -> int:
    """Words that may change: never more than the budget's share (the attacks' rule)."""
    return int(math.floor(budget * n_words + 1e-9))


def separators(text: str) -> str:
    """The text's separators without white space: what an edit must keep."""
    return "".join(ch for token in tokenize(text) if not is_word(token) for ch in token if not ch.isspace())


def words_changed(original: str, edited: str) -> int:
    """Word-level Levenshtein distance: the fewest words replaced, inserted or deleted (case ignored)."""
    before = [w.lower() for w in words(original)]
    after = [w.lower() for w in words(edited)]
    previous = list(range(len(after) + 1))
    for i, word in enumerate(before, 1):
        current = [i]
        for j, other in enumerate(after, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class EditMeasure:
    """What the server counts of an edit before it asks the model service anything."""

    n_words: int  # words of the original
    changed: int
    allowed: int
    budget: float
    separators_kept: bool

    @property
    def share(self) -> float:
        return self.changed / self.n_words if self.n_words else 0.0

    @property
    def within_budget(self) -> bool:
        return 0 < self.changed <= self.allowed


def clean_edit(raw: object) -> str:
    """The edit as submitted, or Invalid: a string, not blank, not over the length cap (line ends as spaces)."""
    if not isinstance(raw, str) or not raw.strip():
        raise Invalid(EDIT_EMPTY)
    text = " ".join(raw.split())
    if len(text) > MAX_TEXT_CHARS:
        raise Invalid(EDIT_TOO_LONG)
    return text


def measure_edit(original: str, edited: str, budget: float) -> EditMeasure:
    n_words = len(words(original))
    return EditMeasure(
        n_words=n_words,
        changed=words_changed(original, edited),
        allowed=max_changes(n_words, budget),
        budget=budget,
        separators_kept=separators(original) == separators(edited),
    )


def rule_problems(measure: EditMeasure, similarity: float, floor: float) -> list[str]:
    """Every rule the edit breaks, in words (empty when it keeps them all; the model's answer aside)."""
    problems = []
    if measure.changed == 0:
        problems.append(EDIT_UNCHANGED)
    elif measure.changed > measure.allowed:
        counts = {"changed": measure.changed, "allowed": measure.allowed, "total": measure.n_words}
        problems.append(EDIT_OVER_BUDGET.format(**counts))
    if not measure.separators_kept:
        problems.append(EDIT_SEPARATORS)
    if similarity < floor:
        problems.append(EDIT_BELOW_FLOOR.format(similarity=similarity, floor=floor))
    return problems

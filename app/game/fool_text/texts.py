"""The definitions the editor offers: test texts of the definitions pack (app/ml/packs/text, read from Debian's
WordNet files, no torch) that the chosen text opponent classifies correctly, asked of the model service."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from app.errors import Invalid, ServiceUnavailable
from app.ml.packs.text.definitions import CATEGORIES, TextPack, definitions_pack
from app.ml.service.text_contracts import TextClassifyResult
from app.ml.service.text_edit_contracts import TextSimilarityResult, TextSimilarityService

# The text opponents (app/ml/text/opponents.TEXT_OPPONENTS; a test keeps the two equal), the fast one first.
OPPONENTS: tuple[str, ...] = ("definitions-tfidf", "definitions-minilm")
CLASS_NAMES: tuple[str, ...] = tuple(name for _, name in CATEGORIES)
CANDIDATES = 8  # test texts drawn per new round; the first the opponent gets right is offered
OPPONENT_UNKNOWN = "Unknown text opponent {name!r}; choose one of: {valid}."
NO_CORRECT_TEXT = "The machine got none of the definitions drawn right; please try again."
TEXT_SERVICE_MISSING = "This model service cannot classify texts."


@runtime_checkable
class TextClassifier(Protocol):
    """``classify_text`` of app/ml/service/text_contracts.TextModelService: probabilities per text."""

    async def classify_text(
        self, opponent: str, texts: list[str], client: str = "", share: str = ""
    ) -> TextClassifyResult: ...


@dataclass(frozen=True)
class Answer:
    """The opponent's answer on one text: its label and every class's probability."""

    label: int
    probabilities: tuple[float, ...]

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]

    def top(self, k: int = 3) -> list[tuple[int, float]]:
        order = sorted(range(len(self.probabilities)), key=lambda i: -self.probabilities[i])
        return [(i, self.probabilities[i]) for i in order[:k]]


def check_opponent(name: str | None) -> str:
    chosen = name or OPPONENTS[0]
    if chosen not in OPPONENTS:
        raise Invalid(OPPONENT_UNKNOWN.format(name=chosen, valid=", ".join(OPPONENTS)))
    return chosen


async def text_pack() -> TextPack:
    """The definitions pack (about 3 s to build once per process; then cached): off the event loop."""
    return await asyncio.to_thread(definitions_pack)


def classifier(service: object) -> TextClassifier:
    if not isinstance(service, TextClassifier):
        raise ServiceUnavailable(TEXT_SERVICE_MISSING)
    return service


def measurer(service: object) -> TextSimilarityService:
    if not isinstance(service, TextSimilarityService):
        raise ServiceUnavailable(TEXT_SERVICE_MISSING)
    return service


async def classify(service: object, opponent: str, texts: Sequence[str], client: str, share: str = "") -> list[Answer]:
    """The opponent's answers through the model service (batched there with everyone's texts)."""
    result = await classifier(service).classify_text(opponent, list(texts), client, share)
    answers = []
    for row in result.probabilities:
        probabilities = tuple(float(p) for p in row)
        answers.append(Answer(max(range(len(probabilities)), key=probabilities.__getitem__), probabilities))
    return answers


async def similarity(service: object, original: str, edited: str, client: str) -> TextSimilarityResult:
    return await measurer(service).text_similarity(original, edited, client)


@dataclass(frozen=True)
class Offer:
    index: int  # in the pack's test split
    text: str
    true_label: int
    answer: Answer


def draw_indices(n_texts: int) -> list[int]:
    """``CANDIDATES`` test texts at random (a module function, so a test can name the texts it means)."""
    return [secrets.randbelow(n_texts) for _ in range(CANDIDATES)]


async def draw_offer(service: object, opponent: str, client: str, share: str = "") -> Offer:
    """A test definition the opponent classifies correctly: ``CANDIDATES`` drawn at random, asked in one call (in
    ``share``'s turns of the model worker)."""
    pack = await text_pack()
    indices = draw_indices(len(pack.test))
    answers = await classify(service, opponent, [pack.test.texts[i] for i in indices], client, share)
    for index, answer in zip(indices, answers, strict=True):
        if answer.label == int(pack.test.labels[index]):
            return Offer(index, pack.test.texts[index], int(pack.test.labels[index]), answer)
    raise ServiceUnavailable(NO_CORRECT_TEXT)

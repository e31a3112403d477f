"""What the "fool the machine yourself" editor asks of the model service besides ``classify_text``
(app/ml/service/text_contracts.py): how close a player's edit stays to the original text, by the sentence
similarity the word-level attacks use (all-MiniLM-L6-v2 cosine, app/ml/text/attacks.py) and against the same floor.
Plain Python, no torch, like the other contract modules: the web tier builds a :class:`TextSimilarityJob` and reads
the :class:`TextSimilarityResult` without importing torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from app.ml.service.wire import WireError, from_wire, to_wire

# The synonym attacks' sentence-similarity floor (app/ml/text/attacks.SYNONYM_FLOOR; a test keeps the two equal).
# The service reports the floor it applied with each result, and the game re-checks edits against that one.
SIMILARITY_FLOOR = 0.80
# A definition of the pack has at most 40 words; an edit may grow it, but not into an essay.
MAX_TEXT_CHARS = 600


@dataclass(frozen=True)
class TextSimilarityJob:
    """How close ``edited`` stays to ``original``. Jobs from every player are encoded together in one batch."""

    original: str
    edited: str
    # Who asks (a player id, as ImageJob.client). Not part of equality.
    client: str = field(default="", compare=False)

    def validate(self) -> None:
        """Raise ValueError with the fix when the job cannot be measured."""
        for name in ("original", "edited", "client"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"TextSimilarityJob.{name} must be a string")
        for name in ("original", "edited"):
            if len(getattr(self, name)) > MAX_TEXT_CHARS:
                raise ValueError(f"TextSimilarityJob.{name} is longer than {MAX_TEXT_CHARS} characters")


@dataclass(frozen=True)
class TextSimilarityResult:
    """The cosine of the two texts' unit-length MiniLM embeddings (1.0 for identical texts) and the floor an edit
    must stay at or above (``SIMILARITY_FLOOR`` of the service that measured it)."""

    similarity: float
    floor: float

    @property
    def above_floor(self) -> bool:
        return self.similarity >= self.floor


@runtime_checkable
class TextSimilarityService(Protocol):
    """The op every model service that serves the editor offers (in-process, remote client, Ray replica, the
    ready-round pool in front of them)."""

    async def text_similarity(self, original: str, edited: str, client: str = "") -> TextSimilarityResult: ...


# -- wire format (app/modelsvc: POST /v1/text/similarity) ----------------------------------------------------------


def similarity_job_to_wire(job: TextSimilarityJob) -> dict[str, Any]:
    return to_wire(job)


def similarity_job_from_wire(data: Any) -> TextSimilarityJob:
    job = from_wire(TextSimilarityJob, data)
    try:
        job.validate()
    except ValueError as error:
        raise WireError(str(error)) from None
    return job


def similarity_result_to_wire(result: TextSimilarityResult) -> dict[str, Any]:
    return to_wire(result)


def similarity_result_from_wire(data: Any) -> TextSimilarityResult:
    result = from_wire(TextSimilarityResult, data)
    if not isinstance(result.similarity, int | float) or not isinstance(result.floor, int | float):
        raise WireError("a TextSimilarityResult needs numbers for similarity and floor")
    return TextSimilarityResult(float(result.similarity), float(result.floor))

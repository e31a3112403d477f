"""What text rounds ask of the model service and get back (issue #18). Plain Python, no torch and no scikit-learn,
like app/ml/service/contracts.py: the web tier builds a :class:`TextJob` and reads a :class:`TextResult` without
loading a text model. The computation is app/ml/text/service.py (attacks in app/ml/text/attacks.py).

Two operations:

* ``text(job)``: one text round. The service takes a test definition of the opponent's pack (``text_index``, or
  one it draws by the seed among those the opponent gets right when clean), shows it clean, attacked (the attack
  may change at most ``floor(budget * words)`` words) or with as many random synonym swaps (the control), and
  returns what the player sees, the words that changed and the opponent's answer on the shown text.
* ``classify_text(opponent, texts, client, share)``: the opponent's class probabilities for texts a player wrote
  (the fool-the-machine editor): no attack, just the model. ``share`` is whose turns it takes, as TextJob.share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.ml.service.wire import WireError, from_wire, to_wire

TEXT_ATTACKS = ("textfooler", "deepwordbug", "transfer")
TEXT_CONDITIONS = ("adversarial", "clean", "random_swap")
MAX_BUDGET = 0.5  # never more than half the words: past that a definition is no longer the same text
MAX_CLASSIFY_TEXTS = 64
MAX_TEXT_CHARS = 2000


@dataclass(frozen=True)
class TextJob:
    """One text round: ``budget`` is the share of words the attack may change (0..MAX_BUDGET)."""

    opponent: str
    attack: str
    budget: float
    seed: int
    condition: str = "adversarial"
    # Which test text of the opponent's pack; -1: the service draws one the opponent gets right when clean, by the
    # seed (the result says which, so that the round can be stored and made again exactly).
    text_index: int = -1
    # Who asks (a player id, as ImageJob.client): the text lane takes turns between clients.
    client: str = field(default="", compare=False)
    # Whose turns the job takes (as ImageJob.share): an opaque key the caller chooses, shared by the clients that
    # should share one fair share (the game's: one per client address). "" means the client's own.
    share: str = field(default="", compare=False)

    @property
    def lane(self) -> str:
        """The fair queue's lane of this job."""
        return self.share or self.client

    @property
    def batch_key(self) -> tuple[str, str, str]:
        return (self.opponent, self.attack, self.condition)

    def validate(self) -> None:
        """Raise ValueError with the fix when the job cannot run."""
        if not isinstance(self.opponent, str) or not self.opponent:
            raise ValueError("TextJob.opponent must be a text opponent's name")
        if self.attack not in TEXT_ATTACKS:
            raise ValueError(f"TextJob.attack must be one of {', '.join(TEXT_ATTACKS)}, got {self.attack!r}")
        if self.condition not in TEXT_CONDITIONS:
            raise ValueError(f"TextJob.condition must be one of {', '.join(TEXT_CONDITIONS)}, got {self.condition!r}")
        budget_ok = isinstance(self.budget, int | float) and not isinstance(self.budget, bool)
        if not budget_ok or not math.isfinite(self.budget) or not 0.0 <= self.budget <= MAX_BUDGET:
            raise ValueError(f"TextJob.budget must be a share of words in 0..{MAX_BUDGET}, got {self.budget!r}")
        for name in ("seed", "text_index"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"TextJob.{name} must be an integer")
        if self.text_index < -1:
            raise ValueError("TextJob.text_index must be -1 (any) or a test text's index")
        if not isinstance(self.client, str) or not isinstance(self.share, str):
            raise ValueError("TextJob.client and TextJob.share must be strings")


@dataclass(frozen=True)
class TextResult:
    """The text a player sees and what the opponent made of it. ``changed`` holds word positions (indices among
    the words of ``shown``, which has as many words as ``original``); ``probabilities`` are the opponent's on
    ``shown``, ``confidence`` the one of its ``answer``; ``clean_answer`` its answer on ``original``. ``queries``
    counts the texts the attack showed the target opponent; ``similarity`` is all-MiniLM-L6-v2's cosine between
    original and shown text (1.0 when they are the same)."""

    opponent: str
    attack: str
    condition: str
    budget: float
    seed: int
    text_index: int
    original: str
    shown: str
    changed: tuple[int, ...]
    n_words: int
    true_label: int
    answer: int
    probabilities: tuple[float, ...]
    confidence: float
    clean_answer: int
    queries: int
    similarity: float
    labels: tuple[str, ...]
    elapsed_ms: float = 0.0
    clean_confidence: float = 0.0  # the opponent's probability of clean_answer on the original
    surrogate: str | None = None  # transfer: the opponent the attack was crafted on

    @property
    def fooled(self) -> bool:
        return self.answer != self.true_label

    @property
    def share_changed(self) -> float:
        return len(self.changed) / self.n_words if self.n_words else 0.0


@dataclass(frozen=True)
class TextClassifyResult:
    """One row of probabilities per text asked, in the order of ``labels`` (the opponent's class names)."""

    probabilities: list[list[float]]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class TextOpponentInfo:
    name: str
    pack: str
    class_names: tuple[str, ...]
    clean_accuracy: float
    test_size: int
    description: str = ""


class TextModelService(Protocol):
    """The text half of the model service (app/ml/service/contracts.py ModelService includes it)."""

    async def text(self, job: TextJob) -> TextResult: ...

    async def classify_text(
        self, opponent: str, texts: list[str], client: str = "", share: str = ""
    ) -> TextClassifyResult: ...

    async def text_opponents(self) -> tuple[TextOpponentInfo, ...]: ...


def check_classify(opponent: str, texts: Any) -> list[str]:
    """The texts of a classify request, or ValueError with the fix."""
    if not isinstance(opponent, str) or not opponent:
        raise ValueError("classify_text needs a text opponent's name")
    if not isinstance(texts, list | tuple) or not all(isinstance(t, str) for t in texts):
        raise ValueError("classify_text takes a list of texts")
    if not 1 <= len(texts) <= MAX_CLASSIFY_TEXTS:
        raise ValueError(f"classify_text takes 1..{MAX_CLASSIFY_TEXTS} texts, got {len(texts)}")
    if any(len(t) > MAX_TEXT_CHARS for t in texts):
        raise ValueError(f"a text may hold at most {MAX_TEXT_CHARS} characters")
    return list(texts)


# -- wire format (app/modelsvc: POST /v1/text, POST /v1/text/classify, GET /v1/text/opponents) ------------------


def text_job_to_wire(job: TextJob) -> dict[str, Any]:
    return to_wire(job)


def text_job_from_wire(data: Any) -> TextJob:
    job = from_wire(TextJob, data)
    try:
        job.validate()
    except ValueError as error:
        raise WireError(str(error)) from None
    return job


def text_result_to_wire(result: TextResult) -> dict[str, Any]:
    return to_wire(result)


def text_result_from_wire(data: Any) -> TextResult:
    result = from_wire(TextResult, data)
    if not isinstance(result.original, str) or not isinstance(result.shown, str):
        raise WireError("a TextResult needs its original and shown texts as strings")
    if len(result.probabilities) != len(result.labels):
        raise WireError("a TextResult needs one probability per label")
    return result


def classify_to_wire(opponent: str, texts: list[str], client: str, share: str = "") -> dict[str, Any]:
    return {"opponent": opponent, "texts": list(texts), "client": client, "share": share}


def classify_from_wire(data: Any) -> tuple[str, list[str], str, str]:
    """(opponent, texts, client, share) of a classify request, or WireError."""
    if not isinstance(data, dict):
        raise WireError("a classify request must be a JSON object")
    client, share = data.get("client", ""), data.get("share", "")
    if not isinstance(client, str) or not isinstance(share, str):
        raise WireError("client and share must be strings")
    try:
        texts = check_classify(data.get("opponent"), data.get("texts"))  # type: ignore[arg-type]
    except ValueError as error:
        raise WireError(str(error)) from None
    return str(data["opponent"]), texts, client, share


def classify_result_to_wire(result: TextClassifyResult) -> dict[str, Any]:
    return to_wire(result)


def classify_result_from_wire(data: Any) -> TextClassifyResult:
    result = from_wire(TextClassifyResult, data)
    rows = result.probabilities
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == len(result.labels) for r in rows):
        raise WireError("a TextClassifyResult needs one row of probabilities per text, one per label")
    return TextClassifyResult([[float(p) for p in row] for row in rows], tuple(result.labels))


def text_opponents_to_wire(infos: tuple[TextOpponentInfo, ...]) -> dict[str, Any]:
    return {"opponents": [to_wire(info) for info in infos]}


def text_opponents_from_wire(data: Any) -> tuple[TextOpponentInfo, ...]:
    if not isinstance(data, dict) or not isinstance(data.get("opponents"), list):
        raise WireError("a text opponent list must be an object with an 'opponents' list")
    return tuple(from_wire(TextOpponentInfo, item) for item in data["opponents"])

"""What "fool it by hand" (issue #21) asks of the model service: the opponent's answer on pixels a person painted
(:class:`ClassifyJob`, batched with everyone's requests and fair per client) and the machine's own smallest
successful attack on one test image (:class:`SmallestJob`, computed once per image and norm). Plain Python and
numpy, no torch, like app/ml/service/contracts.py; the computations are in app/ml/service/in_process.py and
app/ml/measure/smallest.py, the wire form is the generic codec of app/ml/service/wire.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import numpy as np

from app.errors import ServiceUnavailable
from app.ml.service.wire import WireError, from_wire, to_wire

TOP_K = 3
MAX_TOP_K = 10
# A forward pass of one image, no backward: what the cost table (app/ml/service/cost.py) charges FGSM's round's own
# forwards, halved. Painters' answers are cheap; admission still holds a client to its share of them.
CLASSIFY_UNITS = 1.0
NORMS = ("l0", "l2", "linf")
PAINT_UNSUPPORTED = "This model service cannot answer painted images (no classify / smallest_attack)."


@dataclass(frozen=True)
class ClassifyJob:
    """The opponent's top-k answer on one image given as uint8 pixels, shaped like the pack's images ((H,W) or
    (H,W,C)). Jobs for the same opponent share one forward pass; ``client`` (a player id) is who asks, as in
    ImageJob: the scheduler takes turns between clients."""

    opponent: str
    image: np.ndarray
    top_k: int = TOP_K
    client: str = field(default="", compare=False)
    # Whose turns the job takes (as ImageJob.share): an opaque key the caller chooses, shared by the clients that
    # should share one fair share (the game's: one per client address). "" means the client's own.
    share: str = field(default="", compare=False)

    @property
    def lane(self) -> str:
        """The fair queue's lane of this job."""
        return self.share or self.client

    @property
    def batch_key(self) -> tuple[str, str]:
        return ("classify", self.opponent)

    def validate(self) -> None:
        """Raise ValueError with the fix when the job cannot be answered."""
        image = self.image
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError("ClassifyJob.image must be a uint8 image shaped (H,W) or (H,W,C)")
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise ValueError(f"ClassifyJob.top_k must lie in 1..{MAX_TOP_K}, got {self.top_k}")
        if not isinstance(self.client, str) or not isinstance(self.share, str):
            raise ValueError("ClassifyJob.client and ClassifyJob.share must be strings")


@dataclass(frozen=True)
class ClassifyResult:
    """The opponent's answer (``label``, its probability) and its top-k labels and probabilities, best first."""

    label: int
    probability: float
    labels: tuple[int, ...]
    probabilities: tuple[float, ...]


@dataclass(frozen=True)
class SmallestJob:
    """The machine's smallest successful attack on test image ``image_index`` of the opponent's pack, in ``norm``:
    l0 (fewest pixels: the one-pixel attack with 1, 2, ... pixels), l2 (DeepFool, then CW when DeepFool's rounded
    image does not fool) or linf (the smallest PGD budget, found by binary search over grey levels). Seeded, so the
    same job always gives the same image."""

    opponent: str
    image_index: int
    norm: str
    seed: int = 0
    client: str = field(default="", compare=False)

    def validate(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"SmallestJob.norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.image_index < 0:
            raise ValueError(f"SmallestJob.image_index must be >= 0, got {self.image_index}")


@dataclass(frozen=True)
class SmallestResult:
    """What the machine's best attack needed: the attack by name, whether it fooled the opponent at all (within the
    search's limits), the changed pixels, the change's L2 and L∞ sizes (pixel units, on the rounded uint8 image the
    opponent answered) and that answer. ``adversarial`` is the rounded image (the clean one when nothing fooled)."""

    opponent: str
    image_index: int
    norm: str
    attack: str
    found: bool
    pixels: int
    l2: float
    linf: float
    label: int
    adversarial: np.ndarray
    elapsed_ms: float = 0.0


class ClassifyService(Protocol):
    """The two calls a model service offers painters; the in-process and remote services have them."""

    async def classify(self, job: ClassifyJob) -> ClassifyResult: ...

    async def smallest_attack(self, job: SmallestJob) -> SmallestResult: ...


def painter_service(service: object) -> ClassifyService:
    """``service`` as a ClassifyService, or ServiceUnavailable when it cannot answer painters (a backend without
    the two calls)."""
    if not callable(getattr(service, "classify", None)) or not callable(getattr(service, "smallest_attack", None)):
        raise ServiceUnavailable(PAINT_UNSUPPORTED)
    return cast(ClassifyService, service)


def top_k(probabilities: np.ndarray, k: int) -> ClassifyResult:
    """A ClassifyResult from one image's probabilities (ties: the lower label first, as argmax)."""
    order = sorted(range(len(probabilities)), key=lambda label: (-float(probabilities[label]), label))[:k]
    return ClassifyResult(
        label=order[0],
        probability=float(probabilities[order[0]]),
        labels=tuple(order),
        probabilities=tuple(float(probabilities[label]) for label in order),
    )


# -- wire form (app/modelsvc: POST /v1/classify, POST /v1/smallest) ------------------------------------------------


def classify_job_to_wire(job: ClassifyJob) -> dict[str, Any]:
    return to_wire(job)


def classify_job_from_wire(data: Any) -> ClassifyJob:
    job = from_wire(ClassifyJob, data)
    try:
        job.validate()
    except ValueError as error:
        raise WireError(str(error)) from None
    return job


def classify_result_to_wire(result: ClassifyResult) -> dict[str, Any]:
    return to_wire(result)


def classify_result_from_wire(data: Any) -> ClassifyResult:
    result = from_wire(ClassifyResult, data)
    if len(result.labels) != len(result.probabilities) or not result.labels:
        raise WireError("a ClassifyResult needs as many probabilities as labels, at least one")
    return result


def smallest_job_to_wire(job: SmallestJob) -> dict[str, Any]:
    return to_wire(job)


def smallest_job_from_wire(data: Any) -> SmallestJob:
    job = from_wire(SmallestJob, data)
    try:
        job.validate()
    except (ValueError, TypeError) as error:
        raise WireError(str(error)) from None
    return job


def smallest_result_to_wire(result: SmallestResult) -> dict[str, Any]:
    return to_wire(result)


def smallest_result_from_wire(data: Any) -> SmallestResult:
    result = from_wire(SmallestResult, data)
    if not isinstance(result.adversarial, np.ndarray) or result.adversarial.dtype != np.uint8:
        raise WireError("a SmallestResult needs its adversarial image as a uint8 array")
    return result

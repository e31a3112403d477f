"""What the game asks of the model service and what it gets back. Plain Python and numpy, no torch, so that a
web process talking to a remote model service never has to import torch."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np

from app.ml.service.explain_contracts import ExplainJob, ExplainResult
from app.ml.service.text_contracts import TextClassifyResult, TextJob, TextOpponentInfo, TextResult
from app.ml.service.wire import WireError, encode_value, from_wire, to_wire


@dataclass(frozen=True)
class ImageJob:
    """Attack one test image of an opponent's data pack with one budget. Jobs that share (opponent, attack,
    params) are batched together; eps and seed stay per sample, so a job's result does not depend on its batch."""

    opponent: str
    attack: str
    params: tuple[tuple[str, Any], ...]
    image_index: int
    eps: float
    seed: int
    # True when the caller wants *some* eligible image at this budget, not this very one: the ready-round pool
    # (app/game/pool.py) may then answer with a result made ahead of time, whose own image_index and seed the caller
    # must store (ImageResult.image_index / .seed). Set False to pin the image (regenerating a stored round).
    any_image: bool = True

    # What the shown image is (app/game/conditions.py): the attack's output (adversarial, transfer), the clean
    # image, random noise of the same budget, or the attack's change negated (flipped).
    condition: str = "adversarial"

    # Who asks (a player id): the batcher takes turns between clients and admission holds each to its share
    # (app/ml/service/admission.py). "" is the server's own work (the ready-round pool, benchmarks, the CLI), held
    # only to the global budget. Not part of equality or the batch key: the same job from two players is the same job.
    client: str = field(default="", compare=False)

    # Whose turns the job takes in the batcher (app/ml/service/fair_queue.py): an opaque key the caller chooses,
    # shared by the clients that should share one fair share (the game's: one per client address, so that one
    # address with many players gets one share). "" means the client's own. Admission stays per client.
    share: str = field(default="", compare=False)

    @property
    def lane(self) -> str:
        """The fair queue's lane of this job."""
        return self.share or self.client

    @property
    def batch_key(self) -> tuple[str, str, tuple[tuple[str, Any], ...], str]:
        return (self.opponent, self.attack, self.params, self.condition)

    @staticmethod
    def freeze_params(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
        return tuple(sorted(params.items()))


@dataclass(frozen=True)
class ImageResult:
    """The clean and adversarial images as uint8 pixels (what the player sees, after rounding) and the
    opponent's answers on both. ``adversarial_probs`` is computed on the rounded image, not the float one."""

    clean: np.ndarray
    adversarial: np.ndarray
    true_label: int
    clean_label: int
    clean_confidence: float
    adversarial_label: int
    adversarial_probs: tuple[float, ...]
    linf: float
    # The L2 size of the shown change (pixel units, on the uint8 image), and for black-box attacks the model
    # queries the attack used and was allowed (None for white-box attacks).
    l2: float = 0.0
    queries: int | None = None
    query_budget: int | None = None
    # Which test image and seed produced it: the job's, echoed back so that a result made ahead of time (a pooled
    # round) can be stored and regenerated exactly like one made on demand.
    image_index: int = -1
    seed: int = 0
    # Defended opponents (app/ml/defenses/outcome.py): what the defense did to the shown image (rejected, reformed,
    # certified, withstood, fooled) and, for a certified model, the radius it proves around the clean image.
    defense_verdict: str | None = None
    certified_radius: float | None = None
    # Set by the ready-round pool on a result it made ahead of time: its reply took no attack time, fooled or not.
    made_ahead: bool = False
    # Iterative attacks that count their gradient steps (PGD): the steps this image took and the attack's limit;
    # fewer than the limit when it stopped early, once the shown image fooled (issue 15). None for other attacks.
    steps: int | None = None
    step_budget: int | None = None

    @property
    def fooled(self) -> bool:
        return self.adversarial_label != self.true_label


@dataclass(frozen=True)
class OpponentInfo:
    name: str
    pack: str
    class_names: tuple[str, ...]
    eligible_indices: tuple[int, ...]
    min_eps: float
    clean_accuracy: float
    card: Mapping[str, Any] = field(default_factory=dict)
    image_shape: tuple[int, ...] = ()  # one image, as the pack stores it: (H, W) or (H, W, C)
    # False for opponents without gradients (tree ensembles): only score, decision and transfer attacks reach them.
    differentiable: bool = True

    @property
    def pixel_count(self) -> int:
        count = 1
        for size in self.image_shape:
            count *= size
        return count


# Every registered attack as plain data: name, threat model, norm, budget, parameters, explanation. Read-only all the
# way down (mappings are MappingProxyType, lists are tuples), so the one catalogue a service builds is handed to every
# caller without a copy: a new round reads it about four times (benchmarks/pool_latency.py).
AttackCatalog = tuple[Mapping[str, Any], ...]


def freeze_catalog(entries: Iterable[Mapping[str, Any]]) -> AttackCatalog:
    return tuple(_read_only(dict(entry)) for entry in entries)


def _read_only(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({key: _read_only(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_read_only(item) for item in value)
    return value


class ModelService(Protocol):
    """The one door to torch. In-process today; the same calls can be served by another process or machine."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def generate(self, job: ImageJob) -> ImageResult: ...

    def opponent_info(self, name: str) -> OpponentInfo: ...

    def opponent_names(self) -> list[str]:
        """The opponents this service has loaded and can attack, the default one first."""
        ...

    def attack_catalog(self) -> AttackCatalog:
        """Every registered attack, read-only (see AttackCatalog)."""
        ...

    async def explain(self, job: ExplainJob) -> ExplainResult:
        """Why the machine fails on one stored round: saliency, a decision-boundary slice and the linearity curve
        (app/ml/measure/explain.py; contracts in app/ml/service/explain_contracts.py). Not batched with generate()."""
        ...

    async def health(self) -> dict[str, Any]: ...

    # Text rounds (issue #18; contracts in app/ml/service/text_contracts.py, worker in app/ml/text/service.py).
    async def text(self, job: TextJob) -> TextResult:
        """One text round: a definition shown clean, attacked or with random synonym swaps, and the answer."""
        ...

    async def classify_text(
        self, opponent: str, texts: list[str], client: str = "", share: str = ""
    ) -> TextClassifyResult:
        """A text opponent's probabilities for each of ``texts`` (no attack): the fool-the-machine editor."""
        ...

    async def text_opponents(self) -> tuple[TextOpponentInfo, ...]:
        """The text opponents this service can play, the default first (empty when it has none)."""
        ...


# -- wire form (app/modelsvc; the codec is app/ml/service/wire.py) ---------------------------------------------


def catalog_to_wire(catalog: AttackCatalog) -> list[dict[str, Any]]:
    return [encode_value(entry) for entry in catalog]


def job_to_wire(job: ImageJob) -> dict[str, Any]:
    return to_wire(job)


def job_from_wire(data: Any) -> ImageJob:
    job = from_wire(ImageJob, data)
    if not all(isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str) for pair in job.params):
        raise WireError("ImageJob.params must be a list of [name, value] pairs")
    if not isinstance(job.client, str):
        raise WireError("ImageJob.client must be a string")
    if not isinstance(job.share, str):
        raise WireError("ImageJob.share must be a string")
    return job


def result_to_wire(result: ImageResult) -> dict[str, Any]:
    return to_wire(result)


def result_from_wire(data: Any) -> ImageResult:
    result = from_wire(ImageResult, data)
    if not isinstance(result.clean, np.ndarray) or not isinstance(result.adversarial, np.ndarray):
        raise WireError("an ImageResult needs its clean and adversarial images as arrays")
    if result.clean.shape != result.adversarial.shape or result.adversarial.dtype != np.uint8:
        raise WireError("the clean and adversarial images must be uint8 arrays of the same shape")
    return result


def info_to_wire(info: OpponentInfo) -> dict[str, Any]:
    return to_wire(info)


def info_from_wire(data: Any) -> OpponentInfo:
    info = from_wire(OpponentInfo, data)
    return dataclasses.replace(info, card=dict(info.card))

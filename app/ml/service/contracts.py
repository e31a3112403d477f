"""What the game asks of the model service and what it gets back. Plain Python and numpy, no torch, so that a
web process talking to a remote model service never has to import torch."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:  # app.ml.service.explain_contracts imports this module's wire codec
    from app.ml.service.explain_contracts import ExplainJob, ExplainResult


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


class ModelService(Protocol):
    """The one door to torch. In-process today; the same calls can be served by another process or machine."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def generate(self, job: ImageJob) -> ImageResult: ...

    def opponent_info(self, name: str) -> OpponentInfo: ...

    def opponent_names(self) -> list[str]:
        """The opponents this service has loaded and can attack, the default one first."""
        ...

    def attack_catalog(self) -> list[dict[str, Any]]:
        """Every registered attack as plain data: name, threat model, norm, parameters, explanation."""
        ...

    async def explain(self, job: ExplainJob) -> ExplainResult:
        """Why the machine fails on one stored round: saliency, a decision-boundary slice and the linearity curve
        (app/ml/measure/explain.py; contracts in app/ml/service/explain_contracts.py). Not batched with generate()."""
        ...

    async def health(self) -> dict[str, Any]: ...


# -- wire format ------------------------------------------------------------------------------------------------
# JSON for the remote model service (app/modelsvc). Generic over the dataclass fields, so a field added to a
# contract travels without touching this code: values become JSON (tuples as lists, numpy scalars as numbers) and
# numpy arrays become {"__ndarray__": {"dtype", "shape", "data": base64 of the raw C-order bytes}}. Decoding reads
# the field types back (lists to tuples), refuses arrays it does not expect (dtype not in ARRAY_DTYPES, a shape whose
# size does not match the bytes, more than MAX_ARRAY_BYTES; there is no pickle anywhere) and ignores fields it does
# not know, so a newer model service can talk to an older web server.

ARRAY_DTYPES = frozenset({"uint8", "float32", "float64", "int64"})
MAX_ARRAY_BYTES = 16 * 1024 * 1024
MAX_ARRAY_DIMS = 4
_Contract = typing.TypeVar("_Contract")


class WireError(ValueError):
    """A message that does not decode into the contract it claims to be."""


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        array = value if value.flags.c_contiguous else value.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
        if array.dtype.name not in ARRAY_DTYPES:
            raise WireError(f"cannot send a {array.dtype.name} array; allowed: {sorted(ARRAY_DTYPES)}")
        return {
            "__ndarray__": {
                "dtype": array.dtype.name,
                "shape": list(array.shape),
                "data": base64.b64encode(array.tobytes()).decode("ascii"),
            }
        }
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _encode(item) for key, item in value.items()}
    return value


def _decode_array(spec: Any) -> np.ndarray:
    if not isinstance(spec, Mapping):
        raise WireError("an array must be an object with dtype, shape and data")
    dtype, shape, data = spec.get("dtype"), spec.get("shape"), spec.get("data")
    if dtype not in ARRAY_DTYPES:
        raise WireError(f"array dtype {dtype!r} is not one of {sorted(ARRAY_DTYPES)}")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_ARRAY_DIMS
        or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n for n in shape)
    ):
        raise WireError(f"array shape {shape!r} must be a list of at most {MAX_ARRAY_DIMS} non-negative ints")
    if not isinstance(data, str) or len(data) > (MAX_ARRAY_BYTES * 4) // 3 + 4:
        raise WireError(f"array data must be base64 text of at most {MAX_ARRAY_BYTES} bytes")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as error:
        raise WireError(f"array data is not valid base64: {error}") from None
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise WireError(f"array of shape {shape} and dtype {dtype} needs {expected} bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _freeze(value: Any) -> Any:
    """Lists back to tuples (contracts are frozen and hashable: ImageJob.params is part of the batch key)."""
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


def _decode(value: Any, hint: Any) -> Any:
    if isinstance(value, Mapping) and "__ndarray__" in value:
        return _decode_array(value["__ndarray__"])
    origin = typing.get_origin(hint)
    if hint is np.ndarray:
        raise WireError(f"expected an array, got {type(value).__name__}")
    if origin is tuple:
        if not isinstance(value, list):
            raise WireError(f"expected a list, got {type(value).__name__}")
        return _freeze(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


@functools.cache
def _field_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, globals(), {"np": np})


def _to_wire(instance: Any) -> dict[str, Any]:
    return {item.name: _encode(getattr(instance, item.name)) for item in dataclasses.fields(instance)}


def _from_wire(cls: type[_Contract], data: Any) -> _Contract:
    if not isinstance(data, Mapping):
        raise WireError(f"a {cls.__name__} must be a JSON object, got {type(data).__name__}")
    hints = _field_hints(cls)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]
        if item.name in data:
            values[item.name] = _decode(data[item.name], hints[item.name])
        elif item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            raise WireError(f"a {cls.__name__} needs the field {item.name!r}")
    try:
        return cls(**values)
    except TypeError as error:
        raise WireError(f"not a valid {cls.__name__}: {error}") from None


def job_to_wire(job: ImageJob) -> dict[str, Any]:
    return _to_wire(job)


def job_from_wire(data: Any) -> ImageJob:
    job = _from_wire(ImageJob, data)
    if not all(isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str) for pair in job.params):
        raise WireError("ImageJob.params must be a list of [name, value] pairs")
    return job


def result_to_wire(result: ImageResult) -> dict[str, Any]:
    return _to_wire(result)


def result_from_wire(data: Any) -> ImageResult:
    result = _from_wire(ImageResult, data)
    if not isinstance(result.clean, np.ndarray) or not isinstance(result.adversarial, np.ndarray):
        raise WireError("an ImageResult needs its clean and adversarial images as arrays")
    if result.clean.shape != result.adversarial.shape or result.adversarial.dtype != np.uint8:
        raise WireError("the clean and adversarial images must be uint8 arrays of the same shape")
    return result


def info_to_wire(info: OpponentInfo) -> dict[str, Any]:
    return _to_wire(info)


def info_from_wire(data: Any) -> OpponentInfo:
    info = _from_wire(OpponentInfo, data)
    return dataclasses.replace(info, card=dict(info.card))

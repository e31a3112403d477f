"""What "why the machine fails" asks of the model service and gets back (issue #7). Plain Python and numpy, no
torch, like app/ml/service/contracts.py: the web tier builds an :class:`ExplainJob` from a stored round and draws the
:class:`ExplainResult` without ever importing torch. The computation is app/ml/measure/explain.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.ml.service.wire import WireError, from_wire, to_wire

# Defaults, also the limits the service accepts (a job may ask for less, e.g. a coarser grid for big images).
GRID_SIZE = 41
LINE_POINTS = 41
SMOOTHGRAD_SAMPLES = 32
MAX_GRID_SIZE = 81
MAX_LINE_POINTS = 101
MAX_SMOOTHGRAD_SAMPLES = 128


@dataclass(frozen=True)
class ExplainJob:
    """Explain one stored round: the clean and the shown images exactly as stored (uint8, (H,W) or (H,W,C)), the true
    label, the round's budget (eps in its norm) and its seed (the random direction of the slice and SmoothGrad's
    noise are drawn from it, so the same round always gives the same pictures)."""

    opponent: str
    clean: np.ndarray
    shown: np.ndarray
    true_label: int
    eps: float
    norm: str
    seed: int
    grid_size: int = GRID_SIZE
    line_points: int = LINE_POINTS
    smoothgrad_samples: int = SMOOTHGRAD_SAMPLES
    # Who asks (a player id, as ImageJob.client): one explanation per client waits in the service's explain lane.
    client: str = field(default="", compare=False)
    # Whose turns the job takes (as ImageJob.share): an opaque key the caller chooses, shared by the clients that
    # should share one fair share (the game's: one per client address). "" means the client's own.
    share: str = field(default="", compare=False)

    @property
    def lane(self) -> str:
        """The fair queue's lane of this job."""
        return self.share or self.client

    def validate(self) -> None:
        """Raise ValueError with the fix when the job cannot be explained."""
        for name in ("clean", "shown"):
            image = getattr(self, name)
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
                raise ValueError(f"ExplainJob.{name} must be a uint8 image shaped (H,W) or (H,W,C)")
        if self.clean.shape != self.shown.shape:
            raise ValueError(f"clean {self.clean.shape} and shown {self.shown.shape} images differ in shape")
        if not isinstance(self.client, str) or not isinstance(self.share, str):
            raise ValueError("ExplainJob.client and ExplainJob.share must be strings")
        if self.norm not in ("linf", "l2", "l0"):
            raise ValueError(f"norm must be linf, l2 or l0, got {self.norm!r}")
        if not self.eps >= 0.0:
            raise ValueError(f"eps must be >= 0, got {self.eps!r}")
        limits = (
            ("grid_size", 5, MAX_GRID_SIZE),
            ("line_points", 5, MAX_LINE_POINTS),
            ("smoothgrad_samples", 1, MAX_SMOOTHGRAD_SAMPLES),
        )
        for name, low, high in limits:
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"ExplainJob.{name} must lie in {low}..{high}, got {value}")
        if self.grid_size % 2 == 0:
            raise ValueError(
                f"ExplainJob.grid_size must be odd (the slice is refined coarse to fine), got {self.grid_size}"
            )


@dataclass(frozen=True)
class ExplainResult:
    """Three views of one round. Arrays are numpy (float32 maps, int64 class grid, float64 coordinates).

    Saliency (SmoothGrad): ``saliency_clean``/``saliency_shown`` are (H,W) maps of |mean input gradient| of the logit
    of the class the model answered on that image, over ``saliency_samples`` copies with Gaussian noise of standard
    deviation ``saliency_sigma`` (pixel units), the largest over colour channels. None when the model has no
    gradients (``unavailable`` says why).

    Boundary slice: ``slice_labels[j, i]`` is the model's class at ``clean + slice_a[i]*u + slice_b[j]*v``, u the unit
    vector from the clean to the shown image (``slice_u``: how u was chosen) and v a seeded random unit vector
    orthogonal to u. The clean image sits at (0,0) (column ``slice_origin``), the shown image at (``shown_distance``,0)
    (column ``slice_shown``). Points are not clipped to the pixel range: the plane is the model's, not the screen's.
    The grid is filled coarse to fine (``slice_evaluated`` points were actually classified; see
    app/ml/measure/explain.py boundary_slice).

    Linearity: logits of ``line_classes`` at ``clean + t*direction`` for each t in ``line_t``, the direction being the
    sign of the loss gradient (L∞/L0 rounds) or the unit loss gradient (L2); ``line_r2`` the R² of a straight-line
    fit per class, and ``linearity_r2`` that of the true class (the one the attack pushes down). None without
    gradients."""

    opponent: str
    true_label: int
    clean_label: int
    shown_label: int
    differentiable: bool
    saliency_method: str
    saliency_samples: int
    saliency_sigma: float
    saliency_clean: np.ndarray | None
    saliency_shown: np.ndarray | None
    slice_labels: np.ndarray
    slice_a: np.ndarray
    slice_b: np.ndarray
    slice_origin: int
    slice_shown: int
    slice_u: str
    slice_evaluated: int
    shown_distance: float
    image_point_label: int
    shown_point_label: int
    line_direction: str
    line_t: np.ndarray | None
    line_classes: tuple[int, ...]
    line_logits: np.ndarray | None
    line_r2: tuple[float, ...]
    linearity_r2: float | None
    elapsed_ms: float
    unavailable: str = ""

    @property
    def slice_center_row(self) -> int:
        """The row of ``slice_labels`` where b = 0 (the line through the clean and the shown image)."""
        return int((len(self.slice_b) - 1) // 2)


# -- wire format (app/modelsvc: POST /v1/explain) ------------------------------------------------------------------
# The generic codec of app/ml/service/wire.py: fields by name, arrays as {"__ndarray__": ...} (float32 maps,
# int64 grid, float64 coordinates: all in its ARRAY_DTYPES), tuples as lists.


def explain_job_to_wire(job: ExplainJob) -> dict[str, Any]:
    return to_wire(job)


def explain_job_from_wire(data: Any) -> ExplainJob:
    job = from_wire(ExplainJob, data)
    try:
        job.validate()
    except ValueError as error:
        raise WireError(str(error)) from None
    return job


def explain_result_to_wire(result: ExplainResult) -> dict[str, Any]:
    return to_wire(result)


def explain_result_from_wire(data: Any) -> ExplainResult:
    result = from_wire(ExplainResult, data)
    if not isinstance(result.slice_labels, np.ndarray) or result.slice_labels.ndim != 2:
        raise WireError("an ExplainResult needs its slice as a 2-d array")
    if result.slice_labels.shape != (len(result.slice_b), len(result.slice_a)):
        raise WireError("an ExplainResult's slice does not match its axes")
    return result

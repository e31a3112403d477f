"""Why the machine fails (issue #7): saliency, a decision-boundary slice and the linearity picture for one round.

- **Saliency: SmoothGrad** (Smilkov et al. 2017): the input gradient of the logit of the class the model answered,
  averaged over ``n`` copies of the image with Gaussian noise of standard deviation ``SMOOTHGRAD_SIGMA`` of the pixel
  range (the paper's 10-20%), then its absolute value, the largest over colour channels. Noise is drawn from a
  generator seeded with the round's seed.
- **Boundary slice**: the model's class on a grid over the plane ``x + a*u + b*v`` through the clean image x, with u
  the unit vector towards the shown image and v a seeded random direction orthogonal to u. Grid columns are spaced
  so that the clean image (a=0) and the shown image (a=|shown - x|) are both grid points, a third and two thirds of
  the way across. Forward passes only, so it works for models without gradients too.
- **Linearity** (Goodfellow et al. 2015, "Explaining and harnessing adversarial examples"): logits along
  ``x + t * sign(grad of the loss at x)`` (L2 rounds: the unit gradient) for t in [-2 eps, 2 eps], with the R² of
  a straight-line fit per class so that "nearly linear" is a number.

Like the attacks, this restores the model's train/eval modes, its parameters' requires_grad flags and torch's grad
mode even on errors, and never draws from torch's global RNG.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor

from app.ml.model import ArenaModel
from app.ml.service.explain_contracts import ExplainJob, ExplainResult

SMOOTHGRAD_SIGMA = 0.15  # of the model's pixel range (bounds)
LINE_SPAN = 2.0  # the line runs over t in [-LINE_SPAN*eps, LINE_SPAN*eps]
# Budgets for rounds stored with eps 0 (clean and noise controls): the line and the slice still need a length.
FALLBACK_EPS = {"linf": 8 / 255, "l0": 8 / 255, "l2": 1.0}
SLICE_CHUNK_PIXELS = 2_000_000  # grid points per forward batch = this / pixels per image (at least 16)
COARSE_STEP = 4  # the slice is classified on every 4th row and column first, then refined near boundaries
LINE_CLASSES = 4  # true, clean and shown answers, then the classes with the largest logits, up to this many


@contextmanager
def _restored(model: ArenaModel) -> Iterator[None]:
    modules = list(model.modules())
    was_training = [m.training for m in modules]
    params = list(model.parameters())
    required_grad = [p.requires_grad for p in params]
    grad_was_enabled = torch.is_grad_enabled()
    try:
        model.eval()
        model.requires_grad_(False)
        with torch.inference_mode(False):
            yield
    finally:
        for module, mode in zip(modules, was_training, strict=True):
            module.training = mode
        for p, flag in zip(params, required_grad, strict=True):
            p.requires_grad_(flag)
        torch.set_grad_enabled(grad_was_enabled)


def image_to_input(image: np.ndarray, model: ArenaModel) -> Tensor:
    """One uint8 image (H,W) or (H,W,C) to a float (1,C,H,W) batch in the model's bounds, float64 for geometry."""
    tensor = torch.from_numpy(np.array(image, dtype=np.float64, copy=True)) / 255.0
    tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    lo, hi = model.bounds
    tensor = lo + tensor * (hi - lo)
    if tuple(tensor.shape) != tuple(model.image_shape):
        raise ValueError(f"{model.name}: images shaped {image.shape} do not fit a model expecting {model.image_shape}")
    return tensor.unsqueeze(0).to(model.device)


def _logits(model: ArenaModel, batch: Tensor) -> Tensor:
    return model(batch.to(torch.float32))


def smoothgrad(
    model: ArenaModel, x: Tensor, classes: Tensor, *, samples: int, sigma: float, generator: torch.Generator
) -> np.ndarray:
    """|mean gradient| of each image's chosen logit over noisy copies: (B,H,W) float32. One backward pass."""
    batch = x.shape[0]
    noise = torch.randn((samples, *x.shape), generator=generator, dtype=torch.float32, device=generator.device)
    noisy = (x.to(torch.float32).unsqueeze(0) + sigma * noise.to(x.device)).reshape(samples * batch, *x.shape[1:])
    noisy.requires_grad_(True)
    with torch.enable_grad():
        logits = model(noisy)
        chosen = logits.gather(1, classes.repeat(samples).view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(chosen, noisy)
    mean = grad.view(samples, batch, *x.shape[1:]).mean(0)
    return mean.abs().amax(1).cpu().numpy().astype(np.float32)


def unit_vector(vector: Tensor) -> Tensor:
    return vector / vector.norm()


def loss_gradient(model: ArenaModel, x: Tensor, label: int) -> Tensor:
    x32 = x.to(torch.float32).clone().requires_grad_(True)
    with torch.enable_grad():
        loss = torch.nn.functional.cross_entropy(model(x32), torch.tensor([label], device=x.device))
        (grad,) = torch.autograd.grad(loss, x32)
    return grad.to(x.dtype)


def slice_axes(distance: float, size: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Grid coordinates along u (a) and v (b): the clean image at column ``origin``, the shown one at ``2*origin``."""
    origin = (size - 1) // 3
    step = distance / origin
    a = step * (np.arange(size, dtype=np.float64) - origin)
    b = step * (np.arange(size, dtype=np.float64) - (size - 1) // 2)
    return a, b, origin, 2 * origin


def classify_points(model: ArenaModel, x: Tensor, u: Tensor, v: Tensor, coords: np.ndarray) -> np.ndarray:
    """The model's class at x + a u + b v for each (a, b) row of ``coords``, in batched inference passes."""
    if len(coords) == 0:
        return np.zeros(0, dtype=np.int64)
    points_ab = torch.from_numpy(coords).to(x.device)
    per_pass = max(16, SLICE_CHUNK_PIXELS // x[0].numel())
    labels = []
    with torch.inference_mode():
        for start in range(0, len(points_ab), per_pass):
            chunk = points_ab[start : start + per_pass]
            points = x + chunk[:, 0].view(-1, 1, 1, 1) * u + chunk[:, 1].view(-1, 1, 1, 1) * v
            labels.append(_logits(model, points).argmax(1).cpu())
    return torch.cat(labels).numpy().astype(np.int64)


def boundary_slice(
    model: ArenaModel,
    x: Tensor,
    u: Tensor,
    v: Tensor,
    a: np.ndarray,
    b: np.ndarray,
    must: list[tuple[int, int]],
    coarse_step: int = COARSE_STEP,
) -> tuple[np.ndarray, int]:
    """The model's class on the grid (rows b, columns a), and how many points were actually classified.

    Coarse to fine, as in marching squares: every ``coarse_step``-th row and column is classified; then, halving the
    step each time, a new point between classified ones is classified only where those neighbours disagree (a
    boundary passes nearby), and otherwise takes their common class. So a region thinner than the coarse step that
    touches no classified point can be missed; the points in ``must`` (the clean and the shown image) are always
    classified. The step used is the largest power of two up to ``coarse_step`` that divides both sides minus one."""
    rows, cols = len(b), len(a)
    step = 1
    while step * 2 <= coarse_step and (rows - 1) % (step * 2) == 0 and (cols - 1) % (step * 2) == 0:
        step *= 2
    labels = np.full((rows, cols), -1, dtype=np.int64)
    count = 0

    def evaluate(cells: list[tuple[int, int]]) -> None:
        nonlocal count
        cells = sorted({(r, c) for r, c in cells if labels[r, c] < 0})
        if cells:
            index = np.array(cells)
            coords = np.stack([a[index[:, 1]], b[index[:, 0]]], axis=1)
            labels[index[:, 0], index[:, 1]] = classify_points(model, x, u, v, coords)
            count += len(cells)

    evaluate([(r, c) for r in range(0, rows, step) for c in range(0, cols, step)] + list(must))
    while step > 1:
        half = step // 2
        pending: list[tuple[int, int]] = []
        for r in range(0, rows, half):
            for c in range(0, cols, half):
                if labels[r, c] >= 0:
                    continue
                near_rows = (r,) if r % step == 0 else (r - half, r + half)
                near_cols = (c,) if c % step == 0 else (c - half, c + half)
                near = {int(labels[nr, nc]) for nr in near_rows for nc in near_cols}
                if len(near) == 1:
                    labels[r, c] = near.pop()
                else:
                    pending.append((r, c))
        evaluate(pending)
        step = half
    return labels, count


def r_squared(t: np.ndarray, values: np.ndarray) -> float:
    """R² of the least-squares line through (t, values); 1.0 for a constant (a line fits it exactly)."""
    total = float(((values - values.mean()) ** 2).sum())
    if total <= 1e-12 * max(1.0, float((values**2).sum())):
        return 1.0
    slope, intercept = np.polyfit(t, values, 1)
    residual = float(((values - (slope * t + intercept)) ** 2).sum())
    return float(min(1.0, max(0.0, 1.0 - residual / total)))


def explain(model: ArenaModel, job: ExplainJob) -> ExplainResult:
    """The three views for one round. See the module docstring for the methods and their parameters."""
    job.validate()
    if not 0 <= job.true_label < model.num_classes:
        raise ValueError(f"true_label {job.true_label} is not a class of {model.name} (0..{model.num_classes - 1})")
    started = time.perf_counter()
    generator = torch.Generator(device="cpu").manual_seed(int(job.seed))
    differentiable = bool(getattr(model, "differentiable", True))
    with _restored(model):
        x = image_to_input(job.clean, model)
        shown = image_to_input(job.shown, model)
        with torch.inference_mode():
            answers = _logits(model, torch.cat([x, shown])).argmax(1)
        clean_label, shown_label = int(answers[0]), int(answers[1])
        eps = job.eps if job.eps > 0 else FALLBACK_EPS[job.norm]
        grad = loss_gradient(model, x, job.true_label) if differentiable else None

        # -- boundary slice ----------------------------------------------------------------------------------
        delta = (shown - x)[0]
        distance = float(delta.norm())
        if distance > 0:
            u, how = unit_vector(delta), "from the clean image to the shown image"
        elif grad is not None and float(grad.norm()) > 0:
            u, how = unit_vector(grad[0]), "the loss gradient (the shown image is the clean image)"
        else:
            u = unit_vector(torch.randn(x.shape[1:], generator=generator, dtype=torch.float64).to(x.device))
            how = "a random direction (the shown image is the clean image)"
        random = torch.randn(x.shape[1:], generator=generator, dtype=torch.float64).to(x.device)
        v = unit_vector(random - (random * u).sum() * u)
        scale = distance if distance > 0 else eps * (x[0].numel() ** 0.5 if job.norm != "l2" else 1.0)
        a, b, origin, shown_column = slice_axes(scale, job.grid_size)
        if distance == 0:  # a clean control round: the shown image is the clean one
            shown_column = origin
        centre = (job.grid_size - 1) // 2
        labels, evaluated = boundary_slice(model, x, u, v, a, b, [(centre, origin), (centre, shown_column)])

        # -- saliency and linearity (gradients) -------------------------------------------------------------
        saliency_clean = saliency_shown = line_t = line_logits = None
        line_classes: tuple[int, ...] = ()
        line_r2: tuple[float, ...] = ()
        linearity = None
        sigma = SMOOTHGRAD_SIGMA * (model.bounds[1] - model.bounds[0])
        unavailable = ""
        direction_text = ""
        if grad is not None:
            maps = smoothgrad(
                model,
                torch.cat([x, shown]),
                answers,
                samples=job.smoothgrad_samples,
                sigma=sigma,
                generator=generator,
            )
            saliency_clean, saliency_shown = maps[0], maps[1]
            if job.norm == "l2":
                direction, direction_text = unit_vector(grad[0]), "the loss gradient, scaled to length 1 (L2 budget)"
            else:
                direction, direction_text = torch.sign(grad[0]), "the sign of the loss gradient (L∞ budget)"
            t = np.linspace(-LINE_SPAN * eps, LINE_SPAN * eps, job.line_points)
            steps = torch.from_numpy(t).to(x.device).view(-1, 1, 1, 1)
            with torch.inference_mode():
                logits = _logits(model, x + steps * direction).cpu().numpy().astype(np.float64)
            order = [job.true_label, shown_label, clean_label, *np.argsort(-logits.max(0)).tolist()]
            chosen: list[int] = []
            for cls in order:
                if int(cls) not in chosen and len(chosen) < min(LINE_CLASSES, model.num_classes):
                    chosen.append(int(cls))
            line_classes = tuple(chosen)
            line_t = t
            line_logits = logits[:, chosen].astype(np.float32)
            line_r2 = tuple(r_squared(t, logits[:, cls]) for cls in chosen)
            linearity = line_r2[0]
        else:
            unavailable = (
                f"{model.name or 'This model'} has no useful gradient (its output is piecewise constant), so saliency "
                "maps and the linearity picture, which both follow the gradient, cannot be drawn for it. The "
                "boundary slice needs only the model's answers and is shown."
            )
    return ExplainResult(
        opponent=job.opponent,
        true_label=int(job.true_label),
        clean_label=clean_label,
        shown_label=shown_label,
        differentiable=differentiable,
        saliency_method="smoothgrad",
        saliency_samples=int(job.smoothgrad_samples),
        saliency_sigma=float(sigma),
        saliency_clean=saliency_clean,
        saliency_shown=saliency_shown,
        slice_labels=labels,
        slice_a=a,
        slice_b=b,
        slice_origin=origin,
        slice_shown=shown_column,
        slice_u=how,
        slice_evaluated=evaluated,
        shown_distance=distance,
        image_point_label=int(labels[centre, origin]),
        shown_point_label=int(labels[centre, shown_column]),
        line_direction=direction_text,
        line_t=line_t,
        line_classes=line_classes,
        line_logits=line_logits,
        line_r2=line_r2,
        linearity_r2=linearity,
        elapsed_ms=(time.perf_counter() - started) * 1000.0,
        unavailable=unavailable,
    )

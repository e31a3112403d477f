"""Cloak a photo: change it by at most ``eps`` per pixel until an ImageNet classifier calls it something else.

The attack runs on the whole (working-size) photo, not on a 224x224 copy: the model's view (resize the shorter
side, centre crop; :func:`app.ml.opponents.imagenet.model_view`) is part of the differentiated graph, so the result is a
full-size image whose every pixel stays within ``eps`` of the upload and whose model view is adversarial.

- ``method="pgd"``: PGD-L∞ on the cross-entropy (Madry et al. 2018); ``method="cw"``: the same projected steps on
  the Carlini-Wagner margin loss (logit of the best other class minus the logit of the class to leave, or the
  target's margin over the best other class), which keeps pushing after the label has flipped.
- ``target=None`` moves away from the model's own answer on the upload ("anything else"); ``target=k`` moves
  towards class k.
- ``eot=True`` (expectation over transformation, Athalye et al. 2018) averages each step's gradient over the
  image as it is and after JPEG re-encoding (straight-through gradient, as in BPDA) and random downscaling, so
  that the cloak survives the treatment a photo gets when it is shared.

The budget is kept exactly in the delivered 8-bit image: the float attack runs in the ball of
``floor(eps*255)/255`` and the rounded change is clipped to the same number of grey levels. Success is
measured by running the model on the delivered 8-bit image, never assumed.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from app.images import amplified_perturbation
from app.ml.model import ArenaModel
from app.ml.opponents.imagenet import MAIN_OPPONENT, TRANSFER_TARGET, class_names, load_imagenet_model, model_view

Method = Literal["pgd", "cw"]
METHODS: tuple[Method, ...] = ("pgd", "cw")
REL_STEP_SIZE = 2.5  # Madry et al.: step = 2.5 * eps / steps
EOT_VIEWS = 4  # as is, JPEG, downscaled, JPEG + downscaled
JPEG_QUALITY_CHECK = 90
RESIZE_CHECK = 0.5

Progress = Callable[[int, int, str, float], None]  # (step, steps, current top-1 name, its probability)


class CloakCancelled(Exception):
    """The caller asked the cloak to stop (the client went away or the server is shutting down)."""


@dataclass(frozen=True)
class Prediction:
    index: int
    name: str
    probability: float


@dataclass(frozen=True)
class SurvivalCheck:
    """The model's answer on the cloaked image after an ordinary treatment (JPEG re-encoding, a resize)."""

    name: str
    top1: Prediction
    survives: bool


@dataclass(frozen=True)
class CloakOutcome:
    original: np.ndarray  # (H,W,3) uint8
    cloaked: np.ndarray  # (H,W,3) uint8, what the download holds
    difference: np.ndarray  # amplified change, mid-grey = unchanged
    before: tuple[Prediction, ...]  # model's top-5 on the original
    after: tuple[Prediction, ...]  # model's top-5 on the cloaked image
    source: Prediction  # the label the cloak moves away from (the model's own top-1 on the upload)
    target: Prediction | None
    success: bool  # measured on `cloaked`: top-1 differs from source (or equals target)
    linf: float  # pixel units in [0,1], measured on the 8-bit images
    l2: float  # pixel units, whole image
    eps: float
    steps: int
    method: Method
    eot: bool
    survival: tuple[SurvivalCheck, ...]
    transfer_before: Prediction | None
    transfer_after: Prediction | None
    transfer_model: str | None
    seconds: float

    @property
    def transfer_fooled(self) -> bool | None:
        if self.transfer_before is None or self.transfer_after is None:
            return None
        if self.target is not None:
            return self.transfer_after.index == self.target.index
        return self.transfer_after.index != self.transfer_before.index


def budget_levels(eps: float) -> int:
    """The budget in whole grey levels (what an 8-bit image can actually carry); at least 1."""
    levels = math.floor(eps * 255 + 1e-6)
    if levels < 1:
        raise ValueError(f"eps must be at least 1/255 (one grey level), got {eps}")
    return levels


class CloakEngine:
    """Holds the main opponent (and, optionally, the transfer target) and cloaks one photo at a time.

    Not thread-safe by design: the cloak service calls it from a single worker thread.
    """

    def __init__(
        self,
        *,
        model: ArenaModel | None = None,
        transfer_model: ArenaModel | None = None,
        with_transfer: bool = False,
        device: str | torch.device = "cpu",
    ) -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = model if model is not None else load_imagenet_model(MAIN_OPPONENT, device=device)
        if transfer_model is None and with_transfer:
            transfer_model = load_imagenet_model(TRANSFER_TARGET, device=device)
        self.transfer_model = transfer_model
        self.class_names = class_names()
        self.resolution = int(self.model.image_shape[-1])

    # -- helpers ---------------------------------------------------------------------------------------------
    def _tensor(self, pixels: np.ndarray) -> Tensor:
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"expected (H,W,3) uint8 pixels, got {pixels.dtype} {pixels.shape}")
        x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.model.device)
        return x.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)

    def _logits(self, model: ArenaModel, x: Tensor) -> Tensor:
        return model(model_view(x, int(model.image_shape[-1])))

    def probabilities(self, pixels: np.ndarray, *, model: ArenaModel | None = None) -> np.ndarray:
        model = model or self.model
        with torch.no_grad():
            return self._logits(model, self._tensor(pixels)).softmax(-1)[0].cpu().numpy()

    def top(self, probs: np.ndarray, k: int = 5) -> tuple[Prediction, ...]:
        order = np.argsort(-probs)[:k]
        return tuple(Prediction(int(i), self.class_names[int(i)], float(probs[i])) for i in order)

    def prediction(self, probs: np.ndarray, index: int) -> Prediction:
        return Prediction(int(index), self.class_names[int(index)], float(probs[index]))

    def class_index(self, name_or_index: str | int) -> int:
        """A class by index or by exact (case-insensitive) name."""
        if isinstance(name_or_index, int) or str(name_or_index).strip().isdigit():
            index = int(name_or_index)
            if not 0 <= index < len(self.class_names):
                raise ValueError(f"class index must be 0..{len(self.class_names) - 1}, got {index}")
            return index
        wanted = str(name_or_index).strip().casefold()
        for i, name in enumerate(self.class_names):
            if name.casefold() == wanted:
                return i
        raise ValueError(f"unknown ImageNet class {name_or_index!r}")

    # -- the attack ------------------------------------------------------------------------------------------
    def cloak(
        self,
        pixels: np.ndarray,
        *,
        eps: float,
        steps: int = 10,
        target: int | None = None,
        method: Method = "pgd",
        eot: bool = False,
        seed: int = 0,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        away_from: int | None = None,
    ) -> CloakOutcome:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if not 1 <= steps <= 1000:
            raise ValueError(f"steps must be 1..1000, got {steps}")
        levels = budget_levels(eps)
        started = time.perf_counter()
        model = self.model
        clean = self._tensor(pixels)
        with torch.no_grad():
            clean_probs = self._logits(model, clean).softmax(-1)[0].cpu().numpy()
        # "anything else" moves away from the model's own answer, or from a known true class (natural rounds)
        source_index = int(clean_probs.argmax()) if away_from is None else int(away_from)
        if target is not None and not 0 <= target < model.num_classes:
            raise ValueError(f"target must be a class index 0..{model.num_classes - 1}, got {target}")
        goal = torch.tensor([target if target is not None else source_index], device=clean.device)
        radius = levels / 255.0
        low = (clean - radius).clamp_(0.0, 1.0)
        high = (clean + radius).clamp_(0.0, 1.0)
        step = REL_STEP_SIZE * radius / steps
        generator = torch.Generator(device="cpu").manual_seed(seed)

        adv = clean.clone()
        best, best_score = clean.clone(), -math.inf
        with torch.enable_grad():
            for i in range(steps):
                if should_stop is not None and should_stop():
                    raise CloakCancelled("the cloak was cancelled")
                adv.requires_grad_(True)
                views = self._eot_views(adv, generator) if eot else adv
                logits = self._logits(model, views) if not eot else self._eot_logits(model, views)
                score = self._objective(logits, goal, targeted=target is not None, method=method)
                (grad,) = torch.autograd.grad(score.sum(), adv)
                current = float(score[0].detach())  # the unchanged view: what the model sees now
                if current > best_score:
                    best_score, best = current, adv.detach().clone()
                adv = adv.detach()
                adv.add_(grad.sign_(), alpha=step)
                adv = torch.maximum(torch.minimum(adv, high), low)
                if progress is not None:
                    probs = logits[0].detach().softmax(-1)
                    top1 = int(probs.argmax())
                    progress(i + 1, steps, self.class_names[top1], float(probs[top1]))
        # The last iterate was never scored; score it (unchanged view) and keep whichever is better.
        with torch.no_grad():
            last_score = float(
                self._objective(self._logits(model, adv), goal, targeted=target is not None, method=method)[0]
            )
        if last_score >= best_score:
            best = adv

        original = pixels.astype(np.uint8, copy=False)
        cloaked = self._quantise(original, best, levels)
        after_probs = self.probabilities(cloaked)
        after_top = int(after_probs.argmax())
        success = after_top == target if target is not None else after_top != source_index

        def survives(probs: np.ndarray) -> bool:
            top = int(probs.argmax())
            return top == target if target is not None else top != source_index

        survival = []
        for name, treated in (
            (f"JPEG quality {JPEG_QUALITY_CHECK}", jpeg_roundtrip(cloaked, JPEG_QUALITY_CHECK)),
            (f"resized to {RESIZE_CHECK:.0%}", resize(cloaked, RESIZE_CHECK)),
        ):
            probs = self.probabilities(treated)
            survival.append(SurvivalCheck(name, self.top(probs, 1)[0], survives(probs)))

        transfer_before = transfer_after = None
        if self.transfer_model is not None:
            transfer_before = self.top(self.probabilities(original, model=self.transfer_model), 1)[0]
            transfer_after = self.top(self.probabilities(cloaked, model=self.transfer_model), 1)[0]

        delta = cloaked.astype(np.float64) - original.astype(np.float64)
        return CloakOutcome(
            original=original,
            cloaked=cloaked,
            difference=amplified_perturbation(original, cloaked),
            before=self.top(clean_probs),
            after=self.top(after_probs),
            source=self.prediction(clean_probs, source_index),
            target=self.prediction(after_probs, target) if target is not None else None,
            success=bool(success),
            linf=float(np.abs(delta).max() / 255.0),
            l2=float(np.sqrt((delta**2).sum()) / 255.0),
            eps=levels / 255.0,
            steps=steps,
            method=method,
            eot=eot,
            survival=tuple(survival),
            transfer_before=transfer_before,
            transfer_after=transfer_after,
            transfer_model=self.transfer_model.name if self.transfer_model is not None else None,
            seconds=time.perf_counter() - started,
        )

    @staticmethod
    def _objective(logits: Tensor, goal: Tensor, *, targeted: bool, method: Method) -> Tensor:
        """Per-view score the attack increases."""
        goal = goal.expand(logits.shape[0])
        if method == "pgd":
            ce = F.cross_entropy(logits, goal, reduction="none")
            return -ce if targeted else ce
        goal_logit = logits.gather(1, goal[:, None])[:, 0]
        others = logits.scatter(1, goal[:, None], -math.inf).amax(1)
        return goal_logit - others if targeted else others - goal_logit

    def _eot_views(self, adv: Tensor, generator: torch.Generator) -> list[Tensor]:
        """The image as is, JPEG re-encoded (straight-through gradient), downscaled, and both."""
        quality = int(torch.randint(75, 96, (1,), generator=generator))
        scale = float(torch.empty(1).uniform_(0.4, 0.9, generator=generator))
        jpeg = straight_through(adv, lambda x: jpeg_tensor(x, quality))
        return [adv, jpeg, downscale(adv, scale), downscale(jpeg, scale)][:EOT_VIEWS]

    def _eot_logits(self, model: ArenaModel, views: list[Tensor]) -> Tensor:
        resolution = int(model.image_shape[-1])
        return model(torch.cat([model_view(v, resolution) for v in views]))

    @staticmethod
    def _quantise(original: np.ndarray, adv: Tensor, levels: int) -> np.ndarray:
        rounded = np.rint(adv.detach()[0].permute(1, 2, 0).cpu().numpy() * 255.0)
        delta = np.clip(rounded - original.astype(np.float64), -levels, levels)
        return np.clip(original.astype(np.float64) + delta, 0, 255).astype(np.uint8)


def straight_through(x: Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
    """``fn(x)`` in the forward pass, identity in the backward pass (BPDA for a non-differentiable step)."""
    with torch.no_grad():
        y = fn(x.detach())
    return x + (y - x).detach()


def jpeg_tensor(x: Tensor, quality: int) -> Tensor:
    pixels = np.rint(x[0].permute(1, 2, 0).cpu().numpy() * 255.0).clip(0, 255).astype(np.uint8)
    out = jpeg_roundtrip(pixels, quality)
    return torch.from_numpy(out).to(x.device).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def downscale(x: Tensor, scale: float) -> Tensor:
    h, w = x.shape[-2:]
    size = (max(8, round(h * scale)), max(8, round(w * scale)))
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def jpeg_roundtrip(pixels: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return np.array(image.convert("RGB"), dtype=np.uint8)


def resize(pixels: np.ndarray, scale: float) -> np.ndarray:
    image = Image.fromarray(pixels)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return np.array(image.resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)

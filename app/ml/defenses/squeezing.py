"""Feature squeezing (Xu, Evans & Qi 2018, "Feature Squeezing: Detecting Adversarial Examples in Deep Neural
Networks"): reduce the colour bit depth and smooth with a 2x2 median filter.

The defended opponent classifies the bit-depth-reduced image, and its detector flags an input when the
prediction moves too much under squeezing: the score is the largest L1 distance between the softmax on the
input and the softmax on each squeezed version (Xu et al.'s joint detector), and the threshold is chosen on clean
training images so that a stated share of them (the target false positive rate) is flagged.

Rounding has zero gradient almost everywhere, so a gradient attack through the real squeezer sees (nearly) no
signal and appears to fail; BPDA (identity backward through the squeezers) restores it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from app.ml.defenses.base import InputDefense, false_positive_threshold, setting_in_range
from app.ml.model import ArenaModel

DEFAULT_BITS = 4
DEFAULT_TARGET_FPR = 0.05


def bit_depth(x: Tensor, bits: int) -> Tensor:
    """Round each pixel of ``x`` (in [0,1]) to one of 2**bits levels."""
    levels = 2**bits - 1
    return torch.round(x * levels) / levels


def median_2x2(x: Tensor) -> Tensor:
    """2x2 median filter (mean of the two middle values of each window), edge-replicated on the right/bottom."""
    padded = F.pad(x, (0, 1, 0, 1), mode="replicate")
    windows = padded.unfold(2, 2, 1).unfold(3, 2, 1).reshape(*x.shape, 4)
    ordered = windows.sort(dim=-1).values
    return (ordered[..., 1] + ordered[..., 2]) / 2


class FeatureSqueezing(InputDefense):
    """Classifies ``bit_depth(x, bits)``; detector: max L1 distance of softmaxes over the two squeezers."""

    has_detector = True

    def __init__(
        self,
        base: ArenaModel,
        *,
        bits: int = DEFAULT_BITS,
        threshold: float = float("inf"),
        name: str = "fashion-squeezed",
        card: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(base, name=name, card=card)
        self.bits = setting_in_range("bits", bits, 1, 8)
        self.threshold = float(threshold)

    def transform(self, x: Tensor) -> Tensor:
        return bit_depth(x, self.bits)

    def squeezers(self, x: Tensor) -> list[Tensor]:
        squeezed = [bit_depth(x, self.bits), median_2x2(x)]
        return [self._maybe_bpda(x, s) for s in squeezed]

    def detection_score(self, x: Tensor) -> Tensor:
        """max over squeezers of ||softmax(f(x)) - softmax(f(squeeze(x)))||_1 (differentiable under BPDA)."""
        reference = F.softmax(self.logits_raw(x), dim=1)
        scores = [(reference - F.softmax(self.logits_raw(s), dim=1)).abs().sum(1) for s in self.squeezers(x)]
        return torch.stack(scores).amax(0)

    def detect(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.detection_score(x) > self.threshold

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, bits={self.bits}, threshold={self.threshold:.4f}"


def calibrate_threshold(model: FeatureSqueezing, clean: Tensor, target_fpr: float, batch: int = 500) -> float:
    """The score quantile that flags ``target_fpr`` of ``clean`` (images the threshold is chosen on)."""
    return false_positive_threshold(model.detection_score, clean, target_fpr, batch)

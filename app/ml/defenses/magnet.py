"""MagNet (Meng & Chen 2017, "MagNet: a Two-Pronged Defense against Adversarial Examples"): an autoencoder
trained on clean images only serves twice.

* Detector: an image whose reconstruction error ``mean |x - ae(x)|^p`` exceeds a threshold is rejected as
  adversarial. The threshold is chosen on clean *training* images the autoencoder never saw, so that a stated
  share of them (the target false positive rate) is rejected. p = 1 (the norm of their MNIST detector II): at a 1%
  false positive rate it flagged 59% of test images 0..299 with ±0.1 sign noise added, p = 2 only 5%.
* Reformer: an image that passes is replaced by its reconstruction ``ae(x)`` before the classifier sees it, which
  pulls a small perturbation back towards the clean images.

Meng & Chen evaluated it against attackers who did not know it was there (the attack crafted on the bare
classifier, then shown to the defended one). Unlike the rounding of feature squeezing or a JPEG round trip, the
reformer is an ordinary differentiable network, so there is no gradient to restore: an adaptive attacker simply
differentiates through the real autoencoder, and puts the detector's score in the loss (Carlini & Wagner 2017,
"MagNet and Efficient Defenses Against Adversarial Attacks are Not Robust to Adversarial Examples"). That is why
:meth:`MagNet.straight_through` returns the model itself instead of a BPDA view.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor

from app.ml.defenses.base import InputDefense, false_positive_threshold
from app.ml.model import ArenaModel
from app.ml.nets.magnet_ae import MagNetAutoencoder

DEFAULT_NORM = 1
DEFAULT_TARGET_FPR = 0.01


class MagNet(InputDefense):
    """Classifies ``ae(x)``; rejects ``x`` when ``mean |x - ae(x)|^norm`` exceeds ``threshold``.

    ``detection_score`` is the reconstruction error divided by the threshold (1.0 is the threshold itself), so a
    detector weight in an attack's loss has the same meaning whatever the error's scale.
    """

    has_detector = True

    def __init__(
        self,
        base: ArenaModel,
        autoencoder: MagNetAutoencoder,
        *,
        threshold: float = float("inf"),
        norm: int = DEFAULT_NORM,
        name: str = "fashion-magnet",
        card: dict[str, Any] | None = None,
    ) -> None:
        if norm not in (1, 2):
            raise ValueError(f"norm must be 1 or 2, got {norm}")
        if not threshold > 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        super().__init__(base, name=name, card=card)
        # Copied, on the model's device, in eval mode and frozen, like the net the base class holds.
        self.autoencoder = copy.deepcopy(autoencoder).to(self.device).eval().requires_grad_(False)
        self.norm = norm
        self.threshold = float(threshold)

    def transform(self, x: Tensor) -> Tensor:
        """The reformer: the autoencoder's reconstruction of ``x``."""
        reformed: Tensor = self.autoencoder(x)
        return reformed

    def straight_through(self) -> MagNet:
        """The model itself: the reformer is differentiable, so the adaptive attack uses its real gradient.

        A BPDA identity here would throw away exactly what an attacker needs to know (how the reformer moves the
        image), making the adaptive attack weaker than a plain gradient attack through the real pipeline.
        """
        return self

    def reconstruction_error(self, x: Tensor) -> Tensor:
        """Per image, ``mean |x - ae(x)|^norm`` over its pixels (the quantity the threshold is set on)."""
        return (x - self.autoencoder(x)).abs().pow(self.norm).flatten(1).mean(1)

    def detection_score(self, x: Tensor) -> Tensor:
        """Reconstruction error over the threshold: above 1 is rejected (0 everywhere before calibration)."""
        return self.reconstruction_error(x) / self.threshold

    def detect(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.detection_score(x) > 1.0

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, norm={self.norm}, threshold={self.threshold:.6f}"


def calibrate_magnet_threshold(model: MagNet, clean: Tensor, target_fpr: float, batch: int = 1000) -> float:
    """The reconstruction-error quantile that rejects ``target_fpr`` of ``clean`` (images the AE did not train on)."""
    return false_positive_threshold(model.reconstruction_error, clean, target_fpr, batch)

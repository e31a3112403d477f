"""Differentiable stand-ins for the search engines of app/ml/cloak/search.py, for the cloak's gradient steps.

- :func:`soft_phash`: pHash as ``imagehash`` computes it (grey, 32x32, 2-D DCT-II, the 8x8 lowest frequencies
  against their median), with the sign replaced by ``tanh(z / SOFTNESS)`` on coefficients scaled by their mean
  distance to the median, so that coefficients near the median (the bits that can flip) get the gradient;
- :func:`logits_and_features`: one EfficientNet-Lite forward that gives both the logits and the pooled features
  the embedding engine compares (the same numbers :func:`describe` gives the index).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from app.ml.model import ArenaModel
from app.ml.opponents.imagenet import model_view

HASH_SIZE = 8
HASH_RESOLUTION = 32
SOFTNESS = 0.25
GREY = (0.299, 0.587, 0.114)  # Pillow's "L" conversion (ITU-R 601-2 luma)


@lru_cache(maxsize=4)
def dct_matrix(n: int, device: str) -> Tensor:
    """scipy.fftpack.dct's type-II matrix (unnormalised): X_k = 2 sum_j x_j cos(pi k (2j+1) / 2n)."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    return (2.0 * torch.cos(math.pi * k * (2 * j + 1) / (2 * n))).float().to(device)


def phash_coefficients(x: Tensor) -> Tensor:
    """(1,3,H,W) in [0,1] -> the 64 low-frequency DCT coefficients pHash compares with their median."""
    weights = torch.tensor(GREY, device=x.device).view(1, 3, 1, 1)
    grey = (x * weights).sum(1, keepdim=True) * 255.0
    small = F.interpolate(grey, size=(HASH_RESOLUTION,) * 2, mode="bilinear", antialias=True, align_corners=False)
    d = dct_matrix(HASH_RESOLUTION, str(x.device))[:HASH_SIZE]
    return (d @ small[0, 0] @ d.T).reshape(-1)


def soft_phash(x: Tensor) -> Tensor:
    """64 soft bits in (-1, 1): +1 where pHash's bit is set (coefficient above the median)."""
    c = phash_coefficients(x)
    centred = c - c.median()
    scale = centred.abs().mean().clamp_min(1e-6).detach()
    return torch.tanh(centred / (scale * SOFTNESS))


def hash_agreement(x: Tensor, bits: np.ndarray) -> Tensor:
    """Mean agreement in [-1, 1] between the soft hash of ``x`` and the ±1 form of ``bits``; the attack lowers it."""
    target = torch.from_numpy(np.where(bits, 1.0, -1.0).astype(np.float32)).to(x.device)
    return (soft_phash(x) * target).mean()


def logits_and_features(model: ArenaModel, x: Tensor) -> tuple[Tensor, Tensor]:
    """EfficientNet-Lite's logits and its pooled 1280-d features for (B,3,H,W) photos in [0,1]."""
    view = model_view(x, int(model.image_shape[-1]))
    net = model.net
    fmap = net.extract_features((view - model.mean) / model.std)  # type: ignore[operator]
    features = fmap.mean(dim=(2, 3))
    logits = net.get_submodule("_fc")(features)
    return logits, features


def to_tensor(pixels: np.ndarray, device: torch.device) -> Tensor:
    x = torch.from_numpy(np.ascontiguousarray(pixels)).to(device)
    return x.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def describe(model: ArenaModel, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, features) of each image, one forward each (sizes differ)."""
    probs, feats = [], []
    with torch.no_grad():
        for pixels in images:
            logits, features = logits_and_features(model, to_tensor(pixels, model.device))
            probs.append(logits.softmax(-1)[0].cpu().numpy())
            feats.append(features[0].cpu().numpy())
    return np.stack(probs), np.stack(feats)


def cosine_distance(features: Tensor, reference: Tensor) -> Tensor:
    return 1.0 - F.cosine_similarity(features, reference.expand_as(features), dim=-1)

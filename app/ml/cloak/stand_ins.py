"""Differentiable stand-ins for the search engines of app/ml/cloak/search.py, for the cloak's gradient steps.

- :func:`soft_phash`: pHash exactly as ``imagehash`` computes it on the 8-bit image the cloak delivers: Pillow's
  integer grey conversion, Pillow's LANCZOS resize to 32x32 as two fixed matrices read back from Pillow itself
  (horizontal pass, rounded to 8 bits, then vertical pass, as Pillow does it), scipy's unnormalised DCT-II
  along axis 0 then axis 1, the 8x8 lowest frequencies against numpy's median. The forward values are Pillow's
  own (rounding included); the gradient goes straight through the roundings (Bengio et al. 2013). The sign is
  replaced by ``tanh(z / SOFTNESS)`` on coefficients scaled by their mean distance to the median, so that
  coefficients near the median (the bits that can flip) get the gradient, and ``soft_phash(x) > 0`` is
  imagehash's bit;
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
from PIL import Image
from torch import Tensor

from app.ml.model import ArenaModel
from app.ml.opponents.imagenet import model_view

HASH_SIZE = 8
HASH_RESOLUTION = 32
SOFTNESS = 0.25
GREY_FIXED = (19595, 38470, 7471)  # Pillow's "L": (R*19595 + G*38470 + B*7471 + 0x8000) >> 16 (ITU-R 601-2 luma)
RESAMPLE_BITS = 22  # Pillow's fixed-point precision for 8-bit resampling (PRECISION_BITS in Resample.c)


@lru_cache(maxsize=4)
def dct_matrix(n: int, device: str) -> Tensor:
    """scipy.fftpack.dct's type-II matrix (unnormalised): X_k = 2 sum_j x_j cos(pi k (2j+1) / 2n)."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    return (2.0 * torch.cos(math.pi * k * (2 * j + 1) / (2 * n))).to(device)


def lanczos_kernel(x: np.ndarray) -> np.ndarray:
    """Pillow's LANCZOS filter: sinc(x) * sinc(x/3) on [-3, 3), zero elsewhere."""
    return np.where((x >= -3.0) & (x < 3.0), np.sinc(x) * np.sinc(x / 3.0), 0.0)


@lru_cache(maxsize=16)
def lanczos_weights(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in): the weights of Pillow's LANCZOS resampling along one axis, in double precision, as
    Resample.c's precompute_coeffs computes them (window centred on each output pixel, support scaled by the
    reduction, each row normalised to sum 1).

    Reading them back from Pillow (a width-only resize of an identity image in "F" mode, whose rows are unit
    images) gives the same weights to float32 precision (the tests check it), but float32 is not enough: with
    weights rounded to float32, one of the 32x32 pixels of scikit-image's chelsea at 512 px came out one grey
    level off."""
    scale = size_in / size_out
    filterscale = max(scale, 1.0)
    support = 3.0 * filterscale
    weights = np.zeros((size_out, size_in))
    for out in range(size_out):
        centre = (out + 0.5) * scale
        low = max(int(centre - support + 0.5), 0)
        high = min(int(centre + support + 0.5), size_in)
        taps = lanczos_kernel((np.arange(low, high) - centre + 0.5) / filterscale)
        total = taps.sum()
        weights[out, low:high] = taps / total if total != 0.0 else taps
    return weights


def pillow_lanczos_readback(size_in: int, size_out: int) -> np.ndarray:
    """The same matrix read back from Pillow: each row of an identity image is a unit image, and resizing only
    the width runs Pillow's horizontal pass alone, so row j of the result is column j of the matrix."""
    eye = Image.fromarray(np.eye(size_in, dtype=np.float32))
    return np.asarray(eye.resize((size_out, size_in), Image.Resampling.LANCZOS), dtype=np.float64).T


@lru_cache(maxsize=16)
def lanczos_fixed(size_in: int, size_out: int) -> np.ndarray:
    """The same weights in Pillow's 8-bit fixed point (normalize_coeffs_8bpc: rounded half away from zero)."""
    scaled = lanczos_weights(size_in, size_out) * (1 << RESAMPLE_BITS)
    return np.where(scaled < 0, np.trunc(scaled - 0.5), np.trunc(scaled + 0.5)).astype(np.int64)


def resample_8bit(pixels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One Pillow 8-bit resampling pass along the last axis: fixed-point sum, rounded, clipped to 0..255."""
    total = pixels.astype(np.int64) @ weights.T + (1 << (RESAMPLE_BITS - 1))
    return np.clip(total >> RESAMPLE_BITS, 0, 255)


def pillow_grey(pixels: np.ndarray) -> np.ndarray:
    """Pillow's RGB -> "L" on (H,W,3) uint8, bit for bit."""
    r, g, b = (pixels[..., i].astype(np.int64) for i in range(3))
    return (r * GREY_FIXED[0] + g * GREY_FIXED[1] + b * GREY_FIXED[2] + 0x8000) >> 16


def phash_pixels(pixels: np.ndarray) -> np.ndarray:
    """The 32x32 grey image imagehash's pHash transforms: ``convert("L").resize((32, 32), LANCZOS)``, exactly."""
    h, w = pixels.shape[:2]
    grey = pillow_grey(pixels)
    across = resample_8bit(grey, lanczos_fixed(w, HASH_RESOLUTION)) if w != HASH_RESOLUTION else grey
    if h == HASH_RESOLUTION:
        return across
    return resample_8bit(across.T, lanczos_fixed(h, HASH_RESOLUTION)).T


def phash_coefficients(x: Tensor) -> Tensor:
    """(1,3,H,W) in [0,1] -> the 64 low-frequency DCT coefficients (float64) pHash compares with their median.

    Forward: the exact values of the delivered 8-bit image (``round(x*255)``); backward: Pillow's weights as a
    linear map, straight through the roundings."""
    h, w = x.shape[-2:]
    pixels = np.rint(x[0].detach().permute(1, 2, 0).cpu().numpy() * 255.0).clip(0, 255)  # as the engine rounds
    exact = torch.from_numpy(phash_pixels(pixels.astype(np.uint8)).astype(np.float64)).to(x.device)
    weights = torch.tensor([c / 65536.0 for c in GREY_FIXED], dtype=torch.float64, device=x.device)
    grey = (x[0].double() * weights.view(3, 1, 1)).sum(0) * 255.0
    across = torch.from_numpy(lanczos_weights(int(w), HASH_RESOLUTION)).to(x.device)
    down = torch.from_numpy(lanczos_weights(int(h), HASH_RESOLUTION)).to(x.device)
    linear = down @ grey @ across.T
    small = linear + (exact - linear).detach()
    d = dct_matrix(HASH_RESOLUTION, str(x.device))[:HASH_SIZE]
    return (d @ small @ d.T).reshape(-1)


def phash_margins(x: Tensor) -> Tensor:
    """Each coefficient's signed distance to the median, in units of the mean distance: > 0 where pHash's bit is
    set. The scale is held constant for the gradient, so that a step moves coefficients, not the yardstick."""
    c = phash_coefficients(x)
    centred = c - torch.quantile(c, 0.5)  # numpy's median: the mean of the two middle values
    return centred / centred.abs().mean().clamp_min(1e-6).detach()


def soft_phash(x: Tensor) -> Tensor:
    """64 soft bits in (-1, 1): +1 where pHash's bit is set (coefficient above the median)."""
    return torch.tanh(phash_margins(x) / SOFTNESS)


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

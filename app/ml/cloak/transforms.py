"""The image treatments the cloak's EOT views use, in numpy/Pillow (JPEG, resize) and torch (BPDA, downscale)."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor


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

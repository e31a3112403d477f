"""PNG encoding of round images and the amplified perturbation shown in the reveal."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def to_png(pixels: np.ndarray) -> bytes:
    """uint8 (H,W) grey or (H,W,3) colour pixels to PNG bytes. PNG is lossless: what is stored is what was shown."""
    if pixels.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {pixels.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def from_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image).copy()


def amplified_perturbation(clean: np.ndarray, adversarial: np.ndarray) -> np.ndarray:
    """The difference stretched to full contrast: mid-grey is 'unchanged', white and black the largest push either
    way. A perturbation of a few grey levels is invisible until it is amplified like this."""
    delta = adversarial.astype(np.int16) - clean.astype(np.int16)
    peak = int(np.abs(delta).max())
    if peak == 0:
        return np.full(clean.shape, 128, dtype=np.uint8)
    return np.clip(128 + np.round(delta * (127.0 / peak)), 0, 255).astype(np.uint8)

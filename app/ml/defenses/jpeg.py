"""JPEG compression as an input transform (Dziugaite et al. 2016; Guo et al. 2018), broken by BPDA (Athalye et
al. 2018): the classifier sees the image after a JPEG encode/decode round trip at a fixed quality.

The round trip runs in libjpeg (through Pillow), outside autograd, so the deployed model's gradient with respect
to its input is exactly zero (the output is re-attached as ``x * 0 + jpeg(x)``, which keeps the graph connected):
a plain gradient attack learns nothing. BPDA's identity backward pass restores the gradient.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from app.ml.defenses.base import InputDefense, setting_in_range
from app.ml.model import ArenaModel

DEFAULT_QUALITY = 75


def jpeg_round_trip(x: Tensor, quality: int) -> Tensor:
    """Each image of ``x`` (B,C,H,W in [0,1]) encoded as JPEG at ``quality`` and decoded again (no gradient)."""
    pixels = (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    mode = {1: "L", 3: "RGB"}[pixels.shape[1]]
    out = np.empty_like(pixels)
    for i, image in enumerate(pixels):
        buffer = io.BytesIO()
        array = image[0] if mode == "L" else image.transpose(1, 2, 0)
        Image.fromarray(array, mode=mode).save(buffer, format="JPEG", quality=quality)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert(mode))
        out[i] = decoded[None] if mode == "L" else decoded.transpose(2, 0, 1)
    return torch.from_numpy(out).to(device=x.device, dtype=x.dtype) / 255


class JPEGCompression(InputDefense):
    def __init__(
        self,
        base: ArenaModel,
        *,
        quality: int = DEFAULT_QUALITY,
        name: str = "fashion-jpeg",
        card: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(base, name=name, card=card)
        self.quality = setting_in_range("quality", quality, 1, 100)

    def transform(self, x: Tensor) -> Tensor:
        return x * 0 + jpeg_round_trip(x, self.quality)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, quality={self.quality}"

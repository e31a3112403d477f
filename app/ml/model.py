"""The model wrapper every attack and the model service talk to.

As in Foolbox, the wrapper owns the input bounds and the normalisation, so callers (attacks, the game, the
service) only ever handle pixel-space images in [0,1] and cannot forget or double-apply a mean/std.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn


class ArenaModel(nn.Module):
    """A classifier that takes pixel-space images shaped (B,C,H,W) in ``bounds`` and returns logits.

    The wrapped net is deep-copied so that moving this model to a device, or an attack switching it to eval
    mode, can never change a module the caller still holds (Foolbox's wrapper moves the caller's module).
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        net: nn.Module,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        image_shape: tuple[int, int, int],
        num_classes: int,
        bounds: tuple[float, float] = (0.0, 1.0),
        device: str | torch.device = "cpu",
        name: str = "",
        pack_name: str = "",
        card: dict[str, Any] | None = None,
        differentiable: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        channels = image_shape[0]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean and std need one value per channel ({channels}), got {mean!r} and {std!r}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {std!r}")
        lo, hi = bounds
        if not lo < hi:
            raise ValueError(f"bounds must satisfy low < high, got {bounds!r}")
        self.net = copy.deepcopy(net)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, channels, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, channels, 1, 1))
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        self.bounds = (float(lo), float(hi))
        self.name = name
        self.pack_name = pack_name
        self.card: dict[str, Any] = dict(card or {})
        # False for classifiers whose output is piecewise constant in the pixels (tree ensembles): their gradient
        # is zero almost everywhere, so white-box attacks refuse them (see Attack.__call__).
        self.differentiable = bool(differentiable)
        self.to(device)
        self.eval()
        self.requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"{self.name or 'model'} expects images shaped (B,{','.join(map(str, self.image_shape))}), "
                f"got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(f"expects float pixel values in {self.bounds}, got dtype {x.dtype}")
        logits: Tensor = self.net((x - self.mean) / self.std)
        return logits

    def extra_repr(self) -> str:
        extra = "" if self.differentiable else ", differentiable=False"
        return f"name={self.name!r}, pack={self.pack_name!r}, bounds={self.bounds}{extra}"

"""What the net recipes share inside their training loops: augmentation, the one-cycle AdamW optimiser, and the
pack's model wrapper for measuring a net while it trains."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.ml.model import ArenaModel
from app.ml.packs import DataPack

MAX_SHIFT = 2
AUGMENTATION = f"random horizontal flip, random shift of up to {MAX_SHIFT} px in each direction (zero fill)"
WEIGHT_DECAY = 5e-4
LOG_EVERY = 50  # batches between progress lines in the log (for runs in the background)


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random horizontal flip and a random per-image shift: cheap, and worth about a point of test accuracy."""
    b, _, h, w = images.shape
    flip = torch.rand(b, generator=generator) < 0.5
    images = torch.where(flip.view(b, 1, 1, 1), images.flip(3), images)
    padded = F.pad(images, (MAX_SHIFT,) * 4)
    dy = torch.randint(0, 2 * MAX_SHIFT + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * MAX_SHIFT + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    return padded[torch.arange(b)[:, None, None, None], torch.arange(images.shape[1])[None, :, None, None], rows, cols]


def batches_per_epoch(examples: int, batch_size: int) -> int:
    return (examples + batch_size - 1) // batch_size


def one_cycle_adamw(
    net: nn.Module, lr: float, epochs: int, steps_per_epoch: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.OneCycleLR]:
    """AdamW with the house weight decay and a one-cycle learning rate peaking at ``lr``."""
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch)
    return optimizer, schedule


def pack_model(
    net: nn.Module,
    pack: DataPack,
    device: torch.device,
    name: str,
    wrapper: type[ArenaModel] = ArenaModel,
    card: dict[str, Any] | None = None,
) -> ArenaModel:
    """``net`` behind the pack's normalisation and bounds (a copy: the caller's net is never changed by it)."""
    return wrapper(
        net,
        mean=pack.mean,
        std=pack.std,
        image_shape=pack.image_shape,
        num_classes=pack.num_classes,
        device=device,
        name=name,
        pack_name=pack.name,
        card=card,
    )


def one_cycle_recipe(lr: float) -> dict[str, str]:
    """How the card describes :func:`one_cycle_adamw` and :func:`augment`."""
    return {
        "optimizer": f"AdamW (weight decay {WEIGHT_DECAY})",
        "schedule": f"one-cycle learning rate, peak {lr}",
        "augmentation": AUGMENTATION,
    }

"""Between the uint8 pixels a data pack stores (and a PNG holds) and the float tensors models take."""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N,H,W) or (N,H,W,C) pixels to float (N,C,H,W) in [0,1]."""
    tensor = torch.from_numpy(np.array(images, copy=True)).to(device)  # the pack cache is read-only
    tensor = tensor.unsqueeze(1) if tensor.ndim == 3 else tensor.permute(0, 3, 1, 2)
    return tensor.float().div_(255.0)


def to_pixels(batch: torch.Tensor) -> np.ndarray:
    """float (N,C,H,W) in [0,1] to uint8 pixels shaped like the pack's images."""
    pixels = batch.detach().mul(255.0).round_().clamp_(0, 255).to(torch.uint8).cpu()
    pixels = pixels[:, 0] if pixels.shape[1] == 1 else pixels.permute(0, 2, 3, 1)
    return pixels.numpy()


def quantize_within_budget(
    clean: np.ndarray, adversarial: torch.Tensor, eps: np.ndarray, norm: str = "linf"
) -> np.ndarray:
    """Round the attack's float image to the uint8 pixels a PNG can hold, without leaving the budget.

    L∞ and L0 (whose eps caps each changed pixel): round, then clip to ±floor(eps·255) grey levels, since plain
    rounding could add half a grey level on top of eps. L2: round to the nearest grey level (unbiased, which matters
    for attacks that stop right at the decision boundary); an image whose rounded change is then larger than eps is
    rounded toward zero instead, which cannot grow any pixel's change and so stays within the attack's eps."""
    base = clean.astype(np.int16)
    if norm == "l2":
        delta = (adversarial.detach().cpu().double() - to_tensor(clean, torch.device("cpu")).double()) * 255.0
        nearest, toward_zero = torch.round(delta), torch.trunc(delta + torch.sign(delta) * 1e-6)
        radius = torch.from_numpy(np.asarray(eps, dtype=np.float64) * 255.0 + 1e-6)
        over = (nearest.flatten(1).norm(dim=1) > radius).view(-1, 1, 1, 1)
        levels = torch.where(over, toward_zero, nearest).to(torch.int16)
        levels = levels[:, 0] if levels.shape[1] == 1 else levels.permute(0, 2, 3, 1)
        return np.clip(base + levels.numpy(), 0, 255).astype(np.uint8)
    rounded = to_pixels(adversarial).astype(np.int16)
    budget = np.floor(eps * 255.0 + 1e-6).astype(np.int16).reshape((-1,) + (1,) * (clean.ndim - 1))
    return np.clip(rounded, base - budget, base + budget).clip(0, 255).astype(np.uint8)

"""The net recipes' shared loop parts."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from app.ml.training.fitting import MAX_SHIFT, augment


def test_augment_only_flips_and_shifts_and_is_seeded() -> None:
    images = torch.rand(32, 1, 28, 28)
    out = augment(images, torch.Generator().manual_seed(3))
    assert torch.equal(out, augment(images, torch.Generator().manual_seed(3)))
    for i in range(len(images)):
        candidates = []
        for source in (images[i], images[i].flip(2)):
            padded = F.pad(source, (MAX_SHIFT,) * 4)
            size = 2 * MAX_SHIFT + 1
            candidates += [padded[:, dy : dy + 28, dx : dx + 28] for dy in range(size) for dx in range(size)]
        assert any(torch.equal(out[i], c) for c in candidates)

"""PGD's early stopping on the shown image (issue 15): every image it stops early fools the model once rounded the
way the model service rounds it, none is stronger-looking than fixed-step PGD would be at the same budget, and the
compute shrinks. Compute is counted as rows through the network (a forward pre-hook), never timed."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import Tensor

from app.ml import ArenaModel
from app.ml.attacks import get_attack
from app.ml.service.tensors import quantize_within_budget, to_tensor

Batch = tuple[Tensor, Tensor]
EPS = 6 / 255  # fashion-cnn's lowest staircase step: about half the images are fooled there


@pytest.fixture
def rows_seen(model: ArenaModel) -> Iterator[list[int]]:
    seen: list[int] = []
    handle = model.net.register_forward_pre_hook(lambda _module, args: seen.append(int(args[0].shape[0])))
    yield seen
    handle.remove()


def seeds(n: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(i) for i in range(n)]


def pixels(images: Tensor) -> np.ndarray:
    return np.asarray(torch.round(images[:, 0] * 255).to(torch.uint8).numpy())


def shown_fools(model: ArenaModel, clean: np.ndarray, adversarial: Tensor, labels: Tensor, eps: float) -> Tensor:
    """What the model service does with the attack's image: round it within the budget, then ask the model."""
    shown = quantize_within_budget(clean, adversarial, np.full(len(clean), eps))
    with torch.no_grad():
        return model(to_tensor(shown, torch.device("cpu"))).argmax(1) != labels


def test_every_image_stopped_early_fools_once_shown_and_the_rest_ran_every_step(
    model: ArenaModel, test_images: Batch, rows_seen: list[int]
) -> None:
    clean = pixels(test_images[0][:64])
    images, labels = to_tensor(clean, torch.device("cpu")), test_images[1][:64]
    fixed = get_attack("pgd", steps=20)(model, images, labels, EPS, generator=seeds(64))
    fixed_rows = sum(rows_seen)
    rows_seen.clear()
    early = get_attack("pgd", steps=20, stop_on_shown=True)(model, images, labels, EPS, generator=seeds(64))
    early_rows = sum(rows_seen)
    assert fixed.steps is not None and torch.equal(fixed.steps, torch.full((64,), 20))
    assert early.steps is not None and int(early.steps.min()) >= 0 and int(early.steps.max()) <= 20
    stopped = early.steps < 20
    assert 8 <= int(stopped.sum()) < 64, "at this budget some images fool and some do not"
    fools = shown_fools(model, clean, early.adversarial, labels, EPS)
    assert bool(fools[stopped].all()), "an image that stopped fools the model as shown"
    # The stopped images are returned already shown: whole grey levels within the budget.
    levels = early.adversarial[stopped] * 255
    assert torch.allclose(levels, torch.round(levels), atol=1e-3)
    assert float(early.linf.max()) <= EPS + 1e-6
    # As strong as fixed-step PGD at the same budget (stochastic either way: within a few images of 64), for less.
    fixed_fools = shown_fools(model, clean, fixed.adversarial, labels, EPS)
    assert int(fools.sum()) >= int(fixed_fools.sum()) - 3, (int(fools.sum()), int(fixed_fools.sum()))
    assert early_rows == int(early.steps.sum()) + int(stopped.sum()), "one forward per step, one more to stop"
    assert early_rows < fixed_rows * 0.9, (early_rows, fixed_rows)


def test_an_image_the_model_already_gets_wrong_stops_at_step_zero_unchanged(
    model: ArenaModel, test_images: Batch
) -> None:
    images, labels = test_images
    with torch.no_grad():
        wrong = model(images).argmax(1) != labels
    idx = torch.cat([torch.nonzero(wrong).flatten()[:3], torch.nonzero(~wrong).flatten()[:5]])
    x = to_tensor(pixels(images[idx]), torch.device("cpu"))
    y = labels[idx]
    with torch.no_grad():
        still_wrong = model(x).argmax(1) != y
    result = get_attack("pgd", steps=5, stop_on_shown=True, random_start=False)(model, x, y, 0.1)
    assert result.steps is not None
    assert torch.equal(result.steps[still_wrong], torch.zeros(int(still_wrong.sum()), dtype=torch.int64))
    assert torch.equal(result.adversarial[still_wrong], x[still_wrong])


def test_a_sample_does_not_depend_on_its_batch(model: ArenaModel, test_images: Batch) -> None:
    x = to_tensor(pixels(test_images[0][100:108]), torch.device("cpu"))
    y = test_images[1][100:108]
    eps = torch.tensor([4 / 255, 12 / 255] * 4)
    attack = get_attack("pgd", steps=10, stop_on_shown=True)
    together = attack(model, x, y, eps, generator=seeds(8))
    assert together.steps is not None
    for i in range(8):
        alone = attack(model, x[i : i + 1], y[i : i + 1], eps[i : i + 1], generator=[seeds(8)[i]])
        assert alone.steps is not None and int(alone.steps[0]) == int(together.steps[i])
        assert torch.allclose(alone.adversarial[0], together.adversarial[i], atol=1e-6)


def test_targeted_stops_when_the_shown_image_is_the_target(model: ArenaModel, test_images: Batch) -> None:
    x = to_tensor(pixels(test_images[0][:16]), torch.device("cpu"))
    y = test_images[1][:16]
    target = (y + 1) % 10
    result = get_attack("pgd", steps=20, stop_on_shown=True)(model, x, y, 0.2, generator=seeds(16), target=target)
    assert result.steps is not None
    stopped = result.steps < 20
    assert bool(stopped.any())
    assert torch.equal(result.logits.argmax(1)[stopped], target[stopped])

"""PGD's early-stopping mode: images leave the batch once fooled, so the compute really shrinks.

Compute is counted as rows through the network (a forward pre-hook), never timed; timings are in
``arena bench attacks`` (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import Tensor

from app.ml import ArenaModel
from app.ml.attacks import get_attack

Batch = tuple[Tensor, Tensor]


@pytest.fixture
def rows_seen(model: ArenaModel) -> Iterator[list[int]]:
    """Batch sizes of every network forward while the test runs."""
    seen: list[int] = []
    handle = model.net.register_forward_pre_hook(lambda _module, args: seen.append(int(args[0].shape[0])))
    yield seen
    handle.remove()


def seeds(n: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(i) for i in range(n)]


def test_early_stop_fools_the_batch_with_fewer_rows(
    model: ArenaModel, test_images: Batch, rows_seen: list[int]
) -> None:
    images, labels = test_images[0][:64], test_images[1][:64]
    fixed = get_attack("pgd", steps=10)(model, images, labels, 0.1, generator=seeds(64))
    fixed_rows = sum(rows_seen)
    assert fixed_rows == 10 * 64  # 10 steps; the success forward waits until someone asks for it
    fixed_success = fixed.success
    assert sum(rows_seen) == 11 * 64
    assert torch.equal(fixed.logits.argmax(1) != labels, fixed_success)
    assert sum(rows_seen) == 11 * 64  # measured once
    rows_seen.clear()
    early = get_attack("pgd", steps=10, early_stop=True)(model, images, labels, 0.1, generator=seeds(64))
    early_rows = sum(rows_seen)
    assert early_rows <= fixed_rows / 2, (early_rows, fixed_rows)
    assert float(early.success.float().mean()) >= 0.95
    assert float(early.success.float().mean()) >= float(fixed.success.float().mean()) - 0.02
    assert torch.all(early.linf <= 0.1) and float(early.adversarial.min()) >= 0 and float(early.adversarial.max()) <= 1


def test_images_fooled_from_the_start_are_returned_unchanged(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images
    with torch.no_grad():
        wrong = model(images).argmax(1) != labels
    assert bool(wrong.any()), "need a few misclassified test images"
    idx = torch.cat([torch.nonzero(wrong).flatten()[:3], torch.nonzero(~wrong).flatten()[:5]])
    x, y = images[idx], labels[idx]
    result = get_attack("pgd", steps=5, early_stop=True, random_start=False)(model, x, y, 0.1)
    assert torch.equal(result.adversarial[:3], x[:3])
    assert bool(result.success[:3].all())
    assert not torch.equal(result.adversarial[3:], x[3:])


def test_early_stop_targeted_reaches_the_target(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images[0][:16], test_images[1][:16]
    target = (labels + 1) % 10
    result = get_attack("pgd", steps=20, early_stop=True)(
        model, images, labels, 0.2, generator=seeds(16), target=target
    )
    assert float(result.success.float().mean()) >= 0.8
    assert torch.equal(result.success, result.logits.argmax(1) == target)


def test_early_stop_sample_does_not_depend_on_its_batch(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images[0][100:108], test_images[1][100:108]
    attack = get_attack("pgd", steps=10, early_stop=True)
    eps = torch.tensor([0.03, 0.1] * 4)
    batch = attack(model, images, labels, eps, generator=seeds(8))
    for i in (0, 5):
        alone = attack(model, images[i : i + 1], labels[i : i + 1], eps[i : i + 1], generator=seeds(8)[i : i + 1])
        # oneDNN picks other kernels for other batch sizes: equal up to float rounding, not bit for bit.
        torch.testing.assert_close(alone.adversarial[0], batch.adversarial[i], atol=1e-5, rtol=0)

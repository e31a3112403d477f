"""PGD adversarial training's attack step: the library's PGD, seeded, and leaving the trained net as it was."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from app.ml.nets.fashion_small import FashionSmallCNN
from app.ml.packs import DataPack
from app.ml.training.pgd_at import adversarial_batch


def _net_with_a_frozen_layer() -> torch.nn.Module:
    net = FashionSmallCNN()
    first = next(net.parameters())
    first.requires_grad_(False)  # frozen by the caller: the attack must leave it frozen
    return net.train()


def test_adversarial_steps_restore_every_requires_grad_flag_and_the_mode(pack: DataPack) -> None:
    net = _net_with_a_frozen_layer()
    before = [p.requires_grad for p in net.parameters()]
    assert not all(before) and any(before)
    images, labels = pack.tensors("train", n=16)
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):  # two training steps, as the recipe takes them
        adv = adversarial_batch(net, pack, torch.device("cpu"), images, labels, 0.1, 3, generator)
        assert [p.requires_grad for p in net.parameters()] == before and net.training
        mean, std = torch.tensor(pack.mean).view(1, -1, 1, 1), torch.tensor(pack.std).view(1, -1, 1, 1)
        loss = F.cross_entropy(net((adv - mean) / std), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert [p.requires_grad for p in net.parameters()] == before


def test_adversarial_batch_is_seeded_within_eps_and_leaves_eps_zero_alone(pack: DataPack) -> None:
    net = FashionSmallCNN().train()
    images, labels = pack.tensors("train", n=8)
    runs = [
        adversarial_batch(net, pack, torch.device("cpu"), images, labels, 0.1, 3, torch.Generator().manual_seed(5))
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1])
    assert (runs[0] - images).abs().max() <= 0.1 and not torch.equal(runs[0], images)
    assert 0 <= runs[0].min() and runs[0].max() <= 1
    generator = torch.Generator().manual_seed(5)
    state = generator.get_state()
    assert adversarial_batch(net, pack, torch.device("cpu"), images, labels, 0.0, 3, generator) is images
    assert torch.equal(generator.get_state(), state)  # eps 0 (the ramp's first batch) draws nothing

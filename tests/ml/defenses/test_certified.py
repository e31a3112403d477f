"""The certified opponent (issue #8): interval bounds must contain every output of the box they bound, the radius
must be the edge of what the bound proves, and no attack may fool a certified image within its radius."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from app.ml import get_attack, load_opponent
from app.ml.defenses.certified import BISECTION_STEPS, MAX_RADIUS, CertifiedModel
from app.ml.defenses.interval import input_box, logit_bounds, margin_lower_bounds, normalise_box, propagate
from app.ml.nets.fashion_certified import FashionCertifiedCNN
from app.ml.opponents.registry import OpponentCorrupt
from app.ml.service.contracts import ImageJob
from tests.ml.conftest import StartModelService

RESOLUTION = MAX_RADIUS / 2**BISECTION_STEPS


@pytest.fixture(scope="module")
def certified(repo_models_dir: Path) -> CertifiedModel:
    model = load_opponent("fashion-certified", models_dir=repo_models_dir)
    assert isinstance(model, CertifiedModel)
    return model


def random_points_in_box(x: torch.Tensor, eps: float, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` points per image of the eps-box cut to [0,1], half of them on its corners (where bounds bite)."""
    lower, upper = input_box(x, eps)
    shape = (count, *x.shape)
    share = torch.rand(shape, generator=generator, dtype=x.dtype)
    share[: count // 2] = share[: count // 2].round()
    return (lower + share * (upper - lower)).flatten(0, 1)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), eps=st.floats(0.0, 0.3), init_scale=st.floats(0.5, 3.0))
def test_interval_bounds_contain_the_logits_of_every_point_in_the_box(seed: int, eps: float, init_scale: float) -> None:
    torch.manual_seed(seed)
    net = FashionCertifiedCNN()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(init_scale)
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 1, 28, 28, generator=generator)
    labels = torch.randint(0, 10, (3,), generator=generator)
    points = random_points_in_box(x, eps, 16, generator)
    # After every layer, not only at the end: the loose later layers would hide an unsound early one.
    for depth in range(1, len(net) + 1):
        prefix = nn.Sequential(*list(net)[:depth])
        lower, upper = propagate(prefix, input_box(x, eps))
        with torch.no_grad():
            outputs = prefix(points).view(16, *lower.shape)
        slack = 1e-4 * (1 + upper.abs().max())
        assert (outputs >= lower - slack).all() and (outputs <= upper + slack).all(), f"layer {depth}"
    logits = outputs
    margins = margin_lower_bounds(net, input_box(x, eps), labels)
    true_margins = logits.gather(2, labels.view(1, 3, 1).expand(16, 3, 1)) - logits
    assert (true_margins >= margins - slack).all()
    # Eliding the last layer is never looser than subtracting the separate logit bounds.
    naive = lower.gather(1, labels.view(-1, 1)) - upper
    assert (margins >= naive - slack).all()


@pytest.mark.parametrize("layer", [nn.Linear(784, 5), nn.Conv2d(1, 3, kernel_size=4, stride=2, padding=1)])
def test_one_affine_layer_is_bounded_exactly(layer: nn.Module) -> None:
    """For one affine layer the interval bound is exact: the box corner against the signs of a unit's input
    gradient reaches the unit's lower bound (and the opposite corner its upper bound)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), layer) if isinstance(layer, nn.Linear) else nn.Sequential(layer)
    x, eps = torch.full((1, 1, 28, 28), 0.5), 0.1
    lower, upper = logit_bounds(net, input_box(x, eps))
    for unit in torch.randperm(lower.numel())[:5].tolist():
        probe = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(net(probe).flatten()[unit], probe)
        with torch.no_grad():
            low_corner = net(x - eps * grad.sign()).flatten()[unit]
            high_corner = net(x + eps * grad.sign()).flatten()[unit]
        assert torch.allclose(low_corner, lower.flatten()[unit], atol=1e-5)
        assert torch.allclose(high_corner, upper.flatten()[unit], atol=1e-5)


def test_the_normalisation_is_part_of_the_bound(certified: CertifiedModel) -> None:
    """The box is in pixels; bounding the normalised box must equal bounding the model in pixel space."""
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(2)).double()
    lower, upper = normalise_box(input_box(x, 0.05), certified.mean, certified.std)
    assert torch.allclose(lower, (input_box(x, 0.05)[0] - certified.mean.double()) / certified.std.double())
    points = random_points_in_box(x.float(), 0.05, 8, torch.Generator().manual_seed(3))
    lo, hi = certified.logit_bounds(x.float(), 0.05)
    with torch.no_grad():
        logits = certified(points).view(8, 4, 10).double()
    assert (logits >= lo - 1e-4).all() and (logits <= hi + 1e-4).all()


def test_radius_is_the_edge_of_what_the_bound_proves(
    certified: CertifiedModel, test_images: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = test_images[0][:64], test_images[1][:64]
    radius = certified.certified_radius(images, labels)
    with torch.no_grad():
        right = certified(images).argmax(1) == labels
    assert (radius[~right] == 0).all(), "a misclassified image has no certified radius"
    assert bool((radius > 0).any())
    has = radius > 0
    assert certified.certifies(images[has], labels[has], radius[has].double()).all()
    assert certified.certifies(images[has], labels[has], radius[has].double() / 2).all(), "monotone in eps"
    beyond = (radius[has].double() + 2 * RESOLUTION).clamp(max=MAX_RADIUS)
    below_cap = radius[has] + 2 * RESOLUTION < MAX_RADIUS
    assert not certified.certifies(images[has], labels[has], beyond)[below_cap].any(), "bisection stops at the edge"
    # Without labels, the radius is that of the model's own answer.
    assert torch.equal(certified.certified_radius(images[right]), radius[right])


def test_pgd_never_fools_a_certified_image_within_its_radius(
    certified: CertifiedModel, test_images: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = test_images[0][:96], test_images[1][:96]
    radius = certified.certified_radius(images, labels)
    has = radius > 0
    gens = [torch.Generator().manual_seed(i) for i in range(int(has.sum()))]
    result = get_attack("pgd", steps=20)(certified, images[has], labels[has], radius[has], generator=gens)
    assert not result.success.any()
    # The same attack at three times the radius does fool some: the radius is not vacuous.
    gens = [torch.Generator().manual_seed(i) for i in range(int(has.sum()))]
    wider = get_attack("pgd", steps=20)(certified, images[has], labels[has], 3 * radius[has], generator=gens)
    assert wider.success.any()


def test_card_figures_are_consistent(certified: CertifiedModel) -> None:
    card = certified.card
    cert = card["certified"]
    assert cert["n"] == card["clean_accuracy_n"] == 10_000
    assert cert["certified_accuracy"]["0.1"] <= cert["clean_accuracy"]
    for row in card.get("defense_lab", {}).get("rows", {}).values():
        assert row["accuracy"] >= row["certified_accuracy"], "an attack got below what IBP proves"
        assert row["certified_fooled"] == 0


def test_loads_only_with_its_own_checkpoint(repo_models_dir: Path, tmp_path: Path) -> None:
    for ext in ("json", "md", "safetensors"):
        shutil.copy(repo_models_dir / f"fashion-certified.{ext}", tmp_path)
    assert isinstance(load_opponent("fashion-certified", models_dir=tmp_path), CertifiedModel)
    card = json.loads((tmp_path / "fashion-certified.json").read_text())
    card["checkpoint"]["sha256"] = "0" * 64
    (tmp_path / "fashion-certified.json").write_text(json.dumps(card))
    with pytest.raises(OpponentCorrupt, match="arena train --opponent fashion-certified"):
        load_opponent("fashion-certified", models_dir=tmp_path)


def test_a_round_against_it_through_the_model_service(repo_models_dir: Path, model_service: StartModelService) -> None:
    async def play() -> None:
        async with model_service("fashion-certified", models_dir=repo_models_dir) as service:
            info = service.opponent_info("fashion-certified")
            assert info.card["adaptive_attack"]["attack"] == "pgd"
            params = ImageJob.freeze_params({"steps": 40})
            job = ImageJob(
                opponent="fashion-certified",
                attack="pgd",
                params=params,
                image_index=info.eligible_indices[0],
                eps=0.1,
                seed=0,
            )
            result = await service.generate(job)
            change = np.abs(result.adversarial.astype(int) - result.clean.astype(int)).max()
            assert change <= round(0.1 * 255)
            assert result.clean_label == result.true_label
            # The reveal's verdict: the radius proven around the clean image, against the change actually shown.
            assert result.certified_radius is not None and result.certified_radius >= 0
            within = result.certified_radius > 0 and result.linf <= result.certified_radius
            assert (result.defense_verdict == "certified") == within
            if within:
                assert not result.fooled, "a certified image cannot be fooled within its radius"
            assert result.defense_verdict == "certified" or result.defense_verdict == (
                "fooled" if result.fooled else "withstood"
            )
            small = await service.generate(dataclasses.replace(job, eps=2 / 255, seed=1))
            assert small.defense_verdict == "certified" or small.certified_radius < 2 / 255

    asyncio.run(play())

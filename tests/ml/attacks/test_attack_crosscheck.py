"""Cross-checks against torchattacks (a test-only extra, installed ``--no-deps``; see the Makefile) on the same
model, images and budget: success rates must agree within 3 percentage points.

FGSM and PGD run on the committed CNN; CW, Square and DeepFool, whose references query or differentiate the model
hundreds of times per image, on the committed MLP (about 50 times cheaper per pass), on more images. Each test
says which change of the algorithm it was checked to catch.

DeepFool is the exception: torchattacks' DeepFool leaves most of these images unflipped after its steps (31% to
45% flipped after 50 steps on the CNN, 43% after 20 on the MLP; ours flips all of them), so a success-rate
comparison would only measure that shortfall. What both compute is the per-image minimal L2 perturbation, so the
check compares the median of those on the images both flipped (within 5%) and that ours flips at least as many.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from app.ml import ArenaModel
from app.ml.attacks import get_attack

torchattacks = pytest.importorskip("torchattacks", reason="test-only extra: pip install --no-deps torchattacks")

Batch = tuple[Tensor, Tensor]
POINTS = 0.03

pytestmark = pytest.mark.slow


def fooled_rate(model: ArenaModel, adv: Tensor, labels: Tensor) -> float:
    with torch.no_grad():
        return float((model(adv).argmax(1) != labels).float().mean())


def test_fgsm_matches_torchattacks(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images
    ours = float(get_attack("fgsm")(model, images, labels, 0.05).success.float().mean())
    theirs = fooled_rate(model, torchattacks.FGSM(model, eps=0.05)(images, labels), labels)
    assert abs(ours - theirs) <= POINTS, (ours, theirs)


def test_pgd_matches_torchattacks(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images
    result = get_attack("pgd", steps=10)(model, images, labels, 0.03, generator=torch.Generator().manual_seed(0))
    ours = float(result.success.float().mean())
    with torch.random.fork_rng():
        torch.manual_seed(0)
        adv = torchattacks.PGD(model, eps=0.03, alpha=2.5 * 0.03 / 10, steps=10, random_start=True)(images, labels)
    theirs = fooled_rate(model, adv, labels)
    assert abs(ours - theirs) <= POINTS, (ours, theirs)


def test_cw_matches_torchattacks(mlp_model: ArenaModel, many_test_images: Batch) -> None:
    """Same algorithm and settings as torchattacks' CW (one c, no search): c=1, kappa=0, 100 Adam steps, lr 0.01.
    On the MLP, 512 images: both fooled 62.9% and 63.3% when this was written (2026-11-26), and our CW with 25
    instead of 50 steps (cap 1.0) lost 5 points, so the 3-point bound catches a changed optimisation."""
    images, labels = many_test_images[0][:512], many_test_images[1][:512]
    attack = get_attack("cw", binary_search_steps=1, steps=100, learning_rate=0.01, initial_const=1.0)
    ours = float(attack(mlp_model, images, labels, 28.0).success.float().mean())
    adv = torchattacks.CW(mlp_model, c=1, kappa=0, steps=100, lr=0.01)(images, labels)
    theirs = fooled_rate(mlp_model, adv, labels)
    assert abs(ours - theirs) <= POINTS, (ours, theirs)


def test_square_matches_torchattacks(mlp_model: ArenaModel, many_test_images: Batch) -> None:
    """Both are random searches, so each side is averaged over three seeds on 1,024 images (3,072 attacked images).
    At eps 0.03 ours fooled 20.7% and torchattacks 19.8% when this was written (2026-11-26); ours with 50 instead
    of 100 queries fooled 17.1%, outside the bound. At eps 0.05 on this model ours came out 2.3-2.9 points above
    torchattacks (on the CNN, 1.2 points); the cause is not pinned down, and that is too close to the bound for a
    test that must not flake, so the check runs at 0.03."""
    images, labels = many_test_images
    attack = get_attack("square", max_queries=100, p_init=0.8)
    ours = (
        sum(
            float(
                attack(mlp_model, images, labels, 0.03, generator=torch.Generator().manual_seed(s))
                .success.float()
                .mean()
            )
            for s in range(3)
        )
        / 3
    )
    theirs = 0.0
    with torch.random.fork_rng():  # torchattacks' Square seeds the global RNG
        for s in range(3):
            ta = torchattacks.Square(mlp_model, norm="Linf", eps=0.03, n_queries=100, n_restarts=1, p_init=0.8, seed=s)
            theirs += fooled_rate(mlp_model, ta(images, labels), labels) / 3
    assert abs(ours - theirs) <= POINTS, (ours, theirs)


def test_deepfool_minimal_perturbations_match_torchattacks(mlp_model: ArenaModel, many_test_images: Batch) -> None:
    """torchattacks' DeepFool runs image by image with a full Jacobian per step (about 0.2 s per image on the CNN,
    0.03 s on the MLP), so this runs on the MLP. When written (2026-11-26), on the first 32 images it flipped 43%
    of those the MLP gets right, ours all of them, and the medians on the 12 both flipped were 0.7204 and 0.7208."""
    model = mlp_model
    images, labels = many_test_images[0][:64], many_test_images[1][:64]
    result = get_attack("deepfool", steps=20, candidates=10)(model, images, labels, 28.0)
    adv = torchattacks.DeepFool(model, steps=20, overshoot=0.02)(images, labels)
    with torch.no_grad():
        theirs_fooled = model(adv).argmax(1) != labels
        clean_right = model(images).argmax(1) == labels
    both = result.success & theirs_fooled & clean_right
    assert float(result.success[clean_right].float().mean()) >= float(theirs_fooled[clean_right].float().mean())
    assert int(both.sum()) >= 5
    ours_l2 = result.l2[both].median()
    theirs_l2 = (adv - images).flatten(1).norm(dim=1)[both].median()
    assert abs(float(ours_l2) - float(theirs_l2)) <= 0.05 * float(theirs_l2), (ours_l2, theirs_l2)

"""The defense lab's wrappers and adaptive attacks (issue #8): BPDA must get through where the naive attack
stalls, the detector's false positive rate must hold on clean images it was not calibrated on, and a wrapper
calibrated on another checkpoint is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from app.ml import ArenaModel, get_attack, load_opponent
from app.ml.defenses import FeatureSqueezing, JPEGCompression, attack_view, bit_depth, jpeg_round_trip, median_2x2
from app.ml.defenses.outcome import defense_outcomes
from app.ml.opponents.registry import OpponentCorrupt, OpponentMissing
from app.ml.packs import DataPack


@pytest.fixture(scope="module")
def squeezed(repo_models_dir: Path) -> FeatureSqueezing:
    model = load_opponent("fashion-squeezed", models_dir=repo_models_dir)
    assert isinstance(model, FeatureSqueezing)
    return model


def test_squeezers_are_what_they_say() -> None:
    x = torch.tensor([0.0, 0.03, 0.05, 0.5, 0.97, 1.0]).view(1, 1, 1, 6)
    assert torch.equal(bit_depth(x, 1), torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 1.0]).view(1, 1, 1, 6))
    assert torch.allclose(bit_depth(x, 4) * 15, torch.round(bit_depth(x, 4) * 15))
    img = torch.zeros(1, 1, 4, 4)
    img[0, 0, 1, 1] = 1.0  # one bright pixel: the 2x2 median removes it
    assert median_2x2(img).abs().max() == 0
    flat = torch.full((1, 1, 4, 4), 0.3)
    assert torch.allclose(median_2x2(flat), flat)


def test_wrapper_classifies_the_squeezed_image(squeezed: FeatureSqueezing, model: ArenaModel) -> None:
    x = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(squeezed(x), model(bit_depth(x, squeezed.bits)), atol=1e-5)
        view = attack_view(squeezed)
        assert torch.equal(view(x), squeezed(x))  # BPDA changes the backward pass only
    assert not squeezed._straight_through and view._straight_through
    assert view.net is squeezed.net
    assert attack_view(model) is model


def test_bpda_restores_the_gradient_the_squeezer_hides(squeezed: FeatureSqueezing) -> None:
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    (real,) = torch.autograd.grad(squeezed(x).sum(), x)
    (bpda,) = torch.autograd.grad(attack_view(squeezed)(x).sum(), x)
    assert real.abs().max() == 0  # rounding: zero gradient everywhere
    assert bpda.abs().max() > 0


def test_detector_false_positive_rate_on_held_out_clean_images(squeezed: FeatureSqueezing, pack: DataPack) -> None:
    """Calibrated on training images for 5%; the card's figure used test 0..999, so check test 1000..1999.

    With n = 1000 and a true rate of 5%, the binomial standard deviation is 0.7 points: 8% is 4 sd away."""
    images, _ = pack.tensors("test", n=2000)
    flagged = torch.cat([squeezed.detect(images[i : i + 500]) for i in range(1000, 2000, 500)])
    rate = flagged.float().mean().item()
    target = squeezed.card["detector"]["target_fpr"]
    assert abs(rate - target) < 0.03, rate


def test_bpda_beats_the_naive_attack_on_feature_squeezing(
    squeezed: FeatureSqueezing, test_images: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = test_images[0][:48], test_images[1][:48]
    gens = [torch.Generator().manual_seed(i) for i in range(48)]
    naive = get_attack("pgd", steps=5)(squeezed, images, labels, 0.1, generator=gens)
    gens = [torch.Generator().manual_seed(i) for i in range(48)]
    bpda = get_attack("bpda-pgd", steps=5)(squeezed, images, labels, 0.1, generator=gens)
    assert bpda.success.float().mean() >= naive.success.float().mean() + 0.4
    # Success is measured on the deployed (squeezing) model, not on the straight-through view.
    with torch.no_grad():
        assert torch.equal(bpda.success, squeezed(bpda.adversarial).argmax(1) != labels)


def test_detector_term_gets_more_images_past_the_detector(squeezed: FeatureSqueezing, pack: DataPack) -> None:
    """Measured while tuning (96 images, eps 0.05, 10 steps): 48% evaded without the term, 67% with weight 1."""
    images, labels = pack.tensors("test", n=96)
    evaded = {}
    for weight in (0.0, 1.0):
        gens = [torch.Generator().manual_seed(i) for i in range(96)]
        attack = get_attack("bpda-pgd", steps=10, loss="margin", detector_weight=weight)
        result = attack(squeezed, images, labels, 0.05, generator=gens)
        evaded[weight] = (result.success & ~squeezed.detect(result.adversarial)).float().mean().item()
    assert evaded[1.0] >= evaded[0.0] + 0.08, evaded


def test_wrapper_of_another_checkpoint_is_refused(repo_models_dir: Path, tmp_path: Path) -> None:
    for name in ("fashion-cnn", "fashion-squeezed"):
        for ext in ("json", "md", "safetensors"):
            src = repo_models_dir / f"{name}.{ext}"
            if src.exists():
                shutil.copy(src, tmp_path / src.name)
    card = json.loads((tmp_path / "fashion-squeezed.json").read_text())
    card["checkpoint"]["sha256"] = "0" * 64
    (tmp_path / "fashion-squeezed.json").write_text(json.dumps(card))
    with pytest.raises(OpponentCorrupt, match="arena train --opponent fashion-squeezed"):
        load_opponent("fashion-squeezed", models_dir=tmp_path)
    (tmp_path / "fashion-squeezed.json").unlink()
    with pytest.raises(OpponentMissing, match="arena train --opponent fashion-squeezed"):
        load_opponent("fashion-squeezed", models_dir=tmp_path)


def test_jpeg_hides_the_gradient_and_bpda_gets_through(
    repo_models_dir: Path, test_images: tuple[torch.Tensor, torch.Tensor]
) -> None:
    jpeg = load_opponent("fashion-jpeg", models_dir=repo_models_dir)
    assert isinstance(jpeg, JPEGCompression)
    images, labels = test_images[0][:32], test_images[1][:32]
    with torch.no_grad():
        assert torch.allclose(jpeg(images), jpeg.logits_raw(jpeg_round_trip(images, jpeg.quality)), atol=1e-5)
    x = images[:4].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(jpeg(x).sum(), x)
    assert grad.abs().max() == 0
    results = {}
    for name in ("pgd", "bpda-pgd"):
        gens = [torch.Generator().manual_seed(i) for i in range(32)]
        results[name] = get_attack(name, steps=5)(jpeg, images, labels, 0.1, generator=gens).success.float().mean()
    assert results["bpda-pgd"] >= results["pgd"] + 0.4, results


def test_defense_outcomes_follow_the_detector_and_the_net_alone(
    squeezed: FeatureSqueezing, model: ArenaModel, pack: DataPack
) -> None:
    images, labels = pack.tensors("test", n=32)
    naive = get_attack("pgd", steps=10)(model, images, labels, 0.1, generator=torch.Generator().manual_seed(3))
    shown = torch.cat([images[:8], naive.adversarial[8:]])
    outcomes = defense_outcomes(squeezed, images, shown, labels)
    assert outcomes is not None and len(outcomes) == 32
    with torch.no_grad():
        flagged = squeezed.detect(shown)
        right = squeezed(shown).argmax(1) == labels
        alone = squeezed.logits_raw(shown).argmax(1) == labels
    for i, outcome in enumerate(outcomes):
        expected = (
            "rejected"
            if flagged[i]
            else "reformed"
            if right[i] and not alone[i]
            else "withstood"
            if right[i]
            else "fooled"
        )
        assert outcome.verdict == expected and outcome.certified_radius is None
    verdicts = {o.verdict for o in outcomes}
    assert "reformed" in verdicts or "rejected" in verdicts, "squeezing undoes or flags some naive PGD images"
    assert defense_outcomes(model, images, shown, labels) is None, "an undefended net has nothing to report"

"""AdvGAN: loading the committed generator (clear errors when it is missing or altered), its per-sample eps
scaling, and a tiny end-to-end training run that writes a loadable checkpoint and card.

The shared invariants (bounds, budget, determinism, batch 1/64, success mask, modes) run for ``advgan`` in
test_attack_invariants.py like for every attack.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import Tensor

from app.ml import ArenaModel
from app.ml.attacks import get_attack
from app.ml.attacks.advgan import GeneratorCorrupt, GeneratorMissing, load_generator
from app.ml.training.advgan import adversarial_loss, hinge_loss, train_advgan
from app.ml.training.options import TrainingOptions

Batch = tuple[Tensor, Tensor]


def test_missing_generator_names_the_training_command(model: ArenaModel, test_images: Batch) -> None:
    attack = get_attack("advgan", generator="advgan-fashion-nowhere")
    with pytest.raises(GeneratorMissing) as info:
        attack(model, test_images[0][:2], test_images[1][:2], 0.1)
    message = str(info.value)
    assert "arena train-advgan --opponent fashion-nowhere --seed 0" in message
    assert "advgan-fashion-nowhere.safetensors" in message and "ARENA_MODELS_DIR" in message


def test_a_checkpoint_that_does_not_match_its_card_is_refused(tmp_path: Path, repo_models_dir: Path) -> None:
    for suffix in (".safetensors", ".json"):
        shutil.copy(repo_models_dir / f"advgan-fashion-cnn{suffix}", tmp_path / f"advgan-fashion-cnn{suffix}")
    card = json.loads((tmp_path / "advgan-fashion-cnn.json").read_text())
    card["checkpoint"]["sha256"] = "0" * 64
    (tmp_path / "advgan-fashion-cnn.json").write_text(json.dumps(card))
    with pytest.raises(GeneratorCorrupt, match="arena train-advgan --opponent fashion-cnn"):
        load_generator("advgan-fashion-cnn", models_dir=tmp_path)


def test_generator_is_cached_per_device_and_frozen(repo_models_dir: Path) -> None:
    net, card = load_generator("advgan-fashion-cnn", models_dir=repo_models_dir)
    again, _ = load_generator("advgan-fashion-cnn", models_dir=repo_models_dir)
    assert net is again
    assert not net.training and all(not p.requires_grad for p in net.parameters())
    assert card["opponent"] == "fashion-cnn" and card["attack"] == "advgan"


def test_one_direction_scaled_by_each_samples_eps(model: ArenaModel, test_images: Batch) -> None:
    """Away from the pixel bounds, the perturbation at eps is exactly eps/0.1 times the one at 0.1."""
    images, labels = test_images[0][:8], test_images[1][:8]
    attack = get_attack("advgan")
    small = attack(model, images, labels, torch.full((8,), 0.05))
    large = attack(model, images, labels, torch.full((8,), 0.1))
    inside = (images > 0.11) & (images < 0.89)
    torch.testing.assert_close(
        (small.adversarial - images)[inside], 0.5 * (large.adversarial - images)[inside], atol=1e-6, rtol=0
    )
    # The generator fools most images at 0.1 (its card has the measured rate on 1,000 images).
    assert float(large.success.float().mean()) >= 0.6


def test_losses_follow_the_paper() -> None:
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 9.0, 1.0]])
    labels = torch.tensor([0, 0])
    # Margins 2 and -9; the second is floored at -kappa.
    assert float(adversarial_loss(logits, labels, kappa=5.0)) == pytest.approx((2.0 - 5.0) / 2)
    direction = torch.cat([torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)])
    assert float(hinge_loss(direction, c=0.8)) == pytest.approx(0.2 / 2)


@pytest.mark.slow
def test_tiny_training_run_writes_a_loadable_generator(tmp_path: Path, repo_models_dir: Path) -> None:
    for suffix in (".safetensors", ".json", ".md"):
        shutil.copy(repo_models_dir / f"fashion-cnn{suffix}", tmp_path / f"fashion-cnn{suffix}")
    card = train_advgan(
        options=TrainingOptions(models_dir=tmp_path, batch_size=32, threads=1, progress=False),
        max_batches=2,
        eval_n=16,
        speed_reps=1,
        speed_batch=8,
        width=4,
    )
    assert card["training"]["command"].startswith("arena train-advgan --opponent fashion-cnn --seed 0")
    assert [r["eps"] for r in card["evaluation"]["rows"]] == [0.05, 0.1, 0.2]
    assert all(0 <= r["advgan_success"] <= 1 and 0 <= r["pgd10_success"] <= 1 for r in card["evaluation"]["rows"])
    assert card["speed"]["advgan_ms_per_image"] > 0 and card["speed"]["pgd10_ms_per_image"] > 0
    net, loaded = load_generator("advgan-fashion-cnn", models_dir=tmp_path)
    assert loaded == json.loads((tmp_path / "advgan-fashion-cnn.json").read_text())
    assert sum(p.numel() for p in net.parameters()) == card["architecture"]["parameters"]
    markdown = (tmp_path / "advgan-fashion-cnn.md").read_text()
    assert "## Success against PGD-10" in markdown and card["checkpoint"]["sha256"] in markdown


def test_the_serving_copy_folds_batch_norms_and_keeps_the_outputs(repo_models_dir: Path) -> None:
    from app.ml.attacks.advgan import inference_generator

    net, _ = load_generator("advgan-fashion-cnn", models_dir=repo_models_dir)
    fast, _ = inference_generator("advgan-fashion-cnn", models_dir=repo_models_dir)
    assert fast is not net and inference_generator("advgan-fashion-cnn", models_dir=repo_models_dir)[0] is fast
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()), "the loaded generator is left as it is"
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(fast(x), net(x), atol=1e-5, rtol=1e-4)

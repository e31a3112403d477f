"""MagNet (issue #8's defense lab): the committed autoencoder loads against its card and the pinned fashion-cnn, the
detector's false positive rate holds on clean images it was not calibrated on, the attack path differentiates the
real reformer, and the adaptive attack (through the reformer, detector in the loss) beats the oblivious one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.ml import ArenaModel, get_attack, load_opponent
from app.ml.defenses import MagNet, attack_view
from app.ml.defenses.outcome import defense_outcomes
from app.ml.nets.magnet_ae import MagNetAutoencoder
from app.ml.opponents.cards import sha256_file
from app.ml.opponents.registry import OpponentCorrupt, OpponentMissing
from app.ml.packs import DataPack
from app.ml.service.contracts import ImageJob
from app.ml.training.magnet import fit_autoencoder
from tests.helpers import auth, new_player
from tests.ml.conftest import StartModelService


@pytest.fixture(scope="module")
def magnet(repo_models_dir: Path) -> MagNet:
    model = load_opponent("fashion-magnet", models_dir=repo_models_dir)
    assert isinstance(model, MagNet)
    return model


def _copy_models(repo_models_dir: Path, tmp_path: Path) -> None:
    for name in ("fashion-cnn", "fashion-magnet"):
        for ext in ("json", "md", "safetensors"):
            shutil.copy(repo_models_dir / f"{name}.{ext}", tmp_path / f"{name}.{ext}")


def _gens(n: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(i) for i in range(n)]


def test_card_pins_both_checkpoints(magnet: MagNet, model: ArenaModel, repo_models_dir: Path) -> None:
    assert magnet.card["checkpoint"]["sha256"] == sha256_file(repo_models_dir / "fashion-magnet.safetensors")
    assert magnet.card["wrapped_checkpoint"]["sha256"] == model.card["checkpoint"]["sha256"]
    assert magnet.card["adaptive_attack"]["attack"] == "bpda-pgd"
    assert magnet.card["adaptive_attack"]["params"]["detector_weight"] > 0


def test_it_classifies_the_reconstruction(magnet: MagNet, model: ArenaModel, pack: DataPack) -> None:
    images, _ = pack.tensors("test", n=16)
    with torch.no_grad():
        reformed = magnet.transform(images)
        assert torch.allclose(magnet(images), model(reformed), atol=1e-5)
        assert (reformed - images).abs().max() > 0.05, "the reformer is not the identity"
    assert attack_view(magnet) is magnet, "the adaptive attack differentiates the real autoencoder"


def test_attack_path_has_gradients_through_reformer_and_detector(magnet: MagNet, pack: DataPack) -> None:
    images, labels = pack.tensors("test", n=4)
    x = images.clone().requires_grad_(True)
    view = attack_view(magnet)
    (through_reformer,) = torch.autograd.grad(view(x).gather(1, labels[:, None]).sum(), x)
    (through_detector,) = torch.autograd.grad(view.detection_score(x).sum(), x)
    assert through_reformer.abs().amax((1, 2, 3)).min() > 0
    assert through_detector.abs().amax((1, 2, 3)).min() > 0


def test_false_positive_rate_holds_on_clean_test_images_it_was_not_measured_on(magnet: MagNet, pack: DataPack) -> None:
    """Calibrated on training images 50,000..59,999 for 1%; the card's figure used test 0..999, so check 1000..1999.

    With n = 1000 and a true rate of 1%, the binomial standard deviation is 0.31 points: 2.5% is 4.8 sd away. The
    detector must also see something: ±0.1 sign noise (59% flagged on test images 0..299 while tuning) is flagged
    far more often than clean images."""
    images, _ = pack.tensors("test", n=2000)
    clean_rate = magnet.detect(images[1000:]).float().mean().item()
    target = magnet.card["detector"]["target_fpr"]
    assert abs(clean_rate - target) < 0.015, clean_rate
    noise = 0.1 * torch.randn(images[1000:1200].shape, generator=torch.Generator().manual_seed(0)).sign()
    noisy_rate = magnet.detect((images[1000:1200] + noise).clamp(0, 1)).float().mean().item()
    assert noisy_rate > clean_rate + 0.2, (noisy_rate, clean_rate)


def test_adaptive_attack_beats_the_oblivious_one(magnet: MagNet, model: ArenaModel, pack: DataPack) -> None:
    """Oblivious: PGD crafted on the bare fashion-cnn (what Meng & Chen measured). Adaptive: the card's round attack
    through the reformer with the detector in the loss. Evaded = fooled and not flagged."""
    images, labels = pack.tensors("test", n=48)
    oblivious = get_attack("pgd", steps=10)(model, images, labels, 0.1, generator=_gens(48)).adversarial
    adaptive_spec = magnet.card["adaptive_attack"]
    adaptive = get_attack(adaptive_spec["attack"], **adaptive_spec["params"])(
        magnet, images, labels, 0.1, generator=_gens(48)
    ).adversarial
    evaded = {}
    for name, adv in (("oblivious", oblivious), ("adaptive", adaptive)):
        with torch.no_grad():
            fooled = magnet(adv).argmax(1) != labels
        evaded[name] = (fooled & ~magnet.detect(adv)).float().mean().item()
    assert evaded["adaptive"] >= evaded["oblivious"] + 0.3, evaded


def test_outcomes_say_what_the_defense_did(magnet: MagNet, model: ArenaModel, pack: DataPack) -> None:
    images, labels = pack.tensors("test", n=32)
    adv = get_attack("pgd", steps=10)(model, images, labels, 0.1, generator=_gens(32)).adversarial
    outcomes = defense_outcomes(magnet, images, adv, labels)
    assert outcomes is not None
    flagged = magnet.detect(adv)
    with torch.no_grad():
        answers = magnet(adv).argmax(1)
        bare = model(adv).argmax(1)
    for i, out in enumerate(outcomes):
        right, bare_right = bool(answers[i] == labels[i]), bool(bare[i] == labels[i])
        expected = (
            "rejected" if flagged[i] else "reformed" if right and not bare_right else "withstood" if right else "fooled"
        )
        assert out.verdict == expected
    assert {o.verdict for o in outcomes} & {"rejected", "reformed"}, "the defense did something to PGD on the net"
    clean = defense_outcomes(magnet, images[:4], images[:4], labels[:4])
    assert clean is not None and [o.verdict for o in clean] != ["rejected"] * 4


def test_attacks_on_it_are_deterministic(magnet: MagNet, pack: DataPack) -> None:
    images, labels = pack.tensors("test", n=8)
    spec = magnet.card["adaptive_attack"]
    runs = [
        get_attack(spec["attack"], **spec["params"])(magnet, images, labels, 0.05, generator=_gens(8)).adversarial
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1])


def test_autoencoder_training_is_seeded(pack: DataPack) -> None:
    images, _ = pack.tensors("test", n=256)
    weights = []
    for _ in range(2):
        torch.manual_seed(3)
        net, log = fit_autoencoder(
            MagNetAutoencoder(),
            images,
            images[:64],
            torch.device("cpu"),
            1,
            64,
            1e-2,
            0.1,
            torch.Generator().manual_seed(3),
            False,
            0.0,
        )
        weights.append(torch.cat([p.flatten() for p in net.parameters()]))
        assert log[0]["epoch"] == 1 and log[0]["heldout_mse"] > 0
    assert torch.equal(weights[0], weights[1])


def test_mismatched_or_missing_checkpoints_are_refused(repo_models_dir: Path, tmp_path: Path) -> None:
    _copy_models(repo_models_dir, tmp_path)
    card_path = tmp_path / "fashion-magnet.json"
    card = json.loads(card_path.read_text())
    load_opponent("fashion-magnet", models_dir=tmp_path)  # the copy as committed loads
    for key in ("checkpoint", "wrapped_checkpoint"):
        edited = json.loads(json.dumps(card))
        edited[key]["sha256"] = "0" * 64
        card_path.write_text(json.dumps(edited))
        with pytest.raises(OpponentCorrupt, match="arena train --opponent fashion-magnet"):
            load_opponent("fashion-magnet", models_dir=tmp_path)
    card_path.write_text(json.dumps(card))
    (tmp_path / "fashion-magnet.safetensors").unlink()
    with pytest.raises(OpponentMissing, match="arena train --opponent fashion-magnet"):
        load_opponent("fashion-magnet", models_dir=tmp_path)


@pytest.mark.anyio
async def test_the_model_service_plays_a_round_against_it(
    repo_models_dir: Path, model_service: StartModelService
) -> None:
    """The round's image comes from the card's adaptive attack and stays within the budget. (The images it may
    draw come from the committed models/fashion-magnet.eligible.json.)"""
    async with model_service("fashion-magnet", max_wait_ms=0.0, models_dir=repo_models_dir) as service:
        info = service.opponent_info("fashion-magnet")
        assert "fashion-magnet" in service.opponent_names()
        spec = info.card["adaptive_attack"]
        result = await service.generate(
            ImageJob(
                opponent="fashion-magnet",
                attack=spec["attack"],
                params=ImageJob.freeze_params(spec["params"]),
                image_index=info.eligible_indices[0],
                eps=0.1,
                seed=0,
            )
        )
        change = np.abs(result.adversarial.astype(int) - result.clean.astype(int)).max()
        assert change <= round(0.1 * 255) and result.clean_label == result.true_label


def test_players_are_offered_it_and_its_rounds_use_the_adaptive_attack(client: TestClient) -> None:
    opponents = {o["name"]: o for o in client.get("/api/v1/opponents").json()}
    magnet = opponents["fashion-magnet"]
    assert magnet["differentiable"] and "bpda-pgd" in magnet["attacks"]
    assert magnet["card"]["detector"]["test_fpr_n"] == 1000
    player = new_player(client)
    created = client.post("/api/v1/rounds", headers=auth(player), json={"opponent": "fashion-magnet"})
    assert created.status_code == 201, created.text
    assert created.json()["attack"] == magnet["card"]["adaptive_attack"]["attack"]

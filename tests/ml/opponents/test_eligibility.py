"""The eligible-image records: committed next to each checkpoint, fresh, true to the model, and what the model
service reads instead of asking the model about all 10,000 test images at every start."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from app.cli import app
from app.config import get_settings
from app.ml.opponents import cards, eligibility
from app.ml.opponents.registry import load_opponent
from app.ml.opponents.specs import available_opponents
from app.ml.packs import DataPack
from app.ml.service.in_process import InProcessModelService
from app.ml.service.tensors import to_tensor
from tests.ml.conftest import StartModelService

COMMITTED = [
    name for name in available_opponents() if cards.card_path(Path(__file__).parents[3] / "models", name).is_file()
]
SAMPLE = 128


def test_every_opponent_with_a_card_has_a_committed_record() -> None:
    assert len(COMMITTED) >= 10
    repo_models = Path(__file__).parents[3] / "models"
    missing = [n for n in COMMITTED if not eligibility.record_path(repo_models, n).is_file()]
    assert not missing, f"run `arena eligible --opponent NAME` for {missing}"


@pytest.mark.parametrize("name", COMMITTED)
def test_the_record_is_fresh_and_true_to_the_model(name: str, repo_models_dir: Path, pack: DataPack) -> None:
    """Fresh: made for this card and test set (else every start recomputes it). True: on a fixed random sample of
    the test set, the images it marks are exactly those the model gets right (all 10,000 would take a minute)."""
    model = load_opponent(name, models_dir=repo_models_dir)
    images, labels = pack.load_split("test")
    key = eligibility.eligibility_key(model.card, images, labels)
    eligible = eligibility.read_record(repo_models_dir, name, key, len(labels))
    assert eligible is not None, f"models/{name}.eligible.json is stale: run `arena eligible --opponent {name}`"
    sample = np.sort(np.random.default_rng(0).choice(len(labels), SAMPLE, replace=False))
    right = eligibility.correctly_classified(model, images[sample], labels[sample], torch.device("cpu"), to_tensor)
    assert np.array_equal(sample[right], np.intersect1d(eligible, sample))
    card_n, card_accuracy = model.card["clean_accuracy_n"], model.card["clean_accuracy"]
    # Where the card measured the whole test set the two must agree; a card measured on the first 1,000 images
    # (fashion-defgan: 75.6% there, 72.8% on all 10,000) agrees within three binomial standard deviations.
    tolerance = 1e-6 if card_n == len(labels) else 3 * (card_accuracy * (1 - card_accuracy) / card_n) ** 0.5
    assert abs(len(eligible) / len(labels) - card_accuracy) <= tolerance


def test_the_mask_round_trips() -> None:
    eligible = np.array([0, 3, 7, 8, 9_999])
    assert np.array_equal(eligibility.decode_mask(eligibility.encode_mask(eligible, 10_000), 10_000), eligible)


def test_measurements_written_into_a_card_keep_the_key(pack: DataPack, repo_models_dir: Path) -> None:
    card = cards.read_card(cards.card_path(repo_models_dir, "fashion-cnn"))
    images, labels = pack.load_split("test")
    key = eligibility.eligibility_key(card, images, labels)
    measured = {**card, "robustness_table": {"rows": []}, "defense_lab": {}, "adaptive_attack": {"attack": "pgd"}}
    assert eligibility.eligibility_key(measured, images, labels) == key
    retrained = {**card, "checkpoint": {**card["checkpoint"], "sha256": "0" * 64}}
    assert eligibility.eligibility_key(retrained, images, labels) != key
    assert eligibility.eligibility_key(card, images, labels[::-1].copy()) != key


@pytest.fixture
def logreg_models(tmp_path: Path, repo_models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A models folder with fashion-logreg only (the cheapest opponent to ask about all test images), an empty
    cache folder, and ARENA_MODELS_DIR pointing at it."""
    folder = tmp_path / "models"
    folder.mkdir()
    for path in repo_models_dir.glob("fashion-logreg.*"):
        shutil.copy(path, folder / path.name)
    monkeypatch.setattr("app.ml.opponents.eligibility.ELIGIBLE_CACHE", tmp_path / "cache")
    monkeypatch.setenv("ARENA_MODELS_DIR", str(folder))
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


def eligible_when_served(model_service: StartModelService, models_dir: Path) -> tuple[int, ...]:
    """Start a model service with fashion-logreg, read the images it may draw, stop it."""

    async def run() -> tuple[int, ...]:
        async with model_service("fashion-logreg", models_dir=models_dir, torch_threads=1) as service:
            return service.opponent_info("fashion-logreg").eligible_indices

    return asyncio.run(run())


def count_asks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    asked: list[int] = []
    original = InProcessModelService._correctly_classified

    def counting(self: InProcessModelService, model: torch.nn.Module, images: np.ndarray, labels: np.ndarray):
        asked.append(len(images))
        return original(self, model, images, labels)

    monkeypatch.setattr(InProcessModelService, "_correctly_classified", counting)
    return asked


def test_the_service_reads_the_record_and_recomputes_a_stale_one_once(
    logreg_models: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_service: StartModelService
) -> None:
    asked = count_asks(monkeypatch)
    committed = json.loads((logreg_models / "fashion-logreg.eligible.json").read_text())
    expected = eligibility.decode_mask(committed["correct"], committed["total"])

    assert eligible_when_served(model_service, logreg_models) == tuple(expected)
    assert asked == [], "a fresh record is read, the model is not asked"

    (logreg_models / "fashion-logreg.eligible.json").write_text(json.dumps({**committed, "key": "0" * 32}))
    assert eligible_when_served(model_service, logreg_models) == tuple(expected)
    assert asked == [10_000], "a stale record is not trusted: the model is asked about every test image"

    assert eligible_when_served(model_service, logreg_models) == tuple(expected)
    assert asked == [10_000], "and the answer went to the local cache"
    assert list((tmp_path / "cache").glob("fashion-logreg-*.npy"))


def test_arena_eligible_rewrites_the_record(logreg_models: Path) -> None:
    path = logreg_models / "fashion-logreg.eligible.json"
    committed = json.loads(path.read_text())
    path.write_text("{not json")
    result = CliRunner().invoke(app, ["eligible", "--opponent", "fashion-logreg", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert f"fashion-logreg: {committed['count']} of 10000 right when clean" in result.output
    rewritten = json.loads(path.read_text())
    assert rewritten["key"] == committed["key"] and rewritten["correct"] == committed["correct"]


def test_arena_eligible_names_the_fix_for_a_missing_opponent(logreg_models: Path) -> None:
    result = CliRunner().invoke(app, ["eligible", "--opponent", "fashion-resnet"])
    assert result.exit_code == 1
    assert "arena train --opponent fashion-resnet" in result.output

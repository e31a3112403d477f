"""The committed opponent, its card, and the ArenaModel wrapper's contract."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from app.config import PROJECT_ROOT
from app.ml import (
    ArenaModel,
    OpponentCorrupt,
    OpponentMissing,
    UnknownName,
    available_opponents,
    load_opponent,
    opponent_pack,
)
from app.ml.measure.evaluation import clean_predictions
from app.ml.opponents.cards import render_markdown
from app.ml.packs import DataPack


def test_loaded_model_is_frozen_in_eval_mode(model: ArenaModel) -> None:
    assert not any(m.training for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())
    assert model.name == "fashion-cnn" and model.pack_name == "fashion"
    assert model.bounds == (0.0, 1.0)
    assert model.card["name"] == "fashion-cnn"


def test_committed_checkpoint_reproduces_card_accuracy(model: ArenaModel, pack: DataPack) -> None:
    images, labels = pack.tensors("test")
    accuracy = (clean_predictions(model, images) == labels).float().mean().item()
    assert accuracy >= 0.91
    # The card's figure must describe this very checkpoint (tolerance: a few borderline images on another CPU).
    assert accuracy == pytest.approx(model.card["clean_accuracy"], abs=0.002)
    assert model.card["clean_accuracy_n"] == 10_000


def test_card_has_the_keys_the_game_reads(model: ArenaModel, repo_models_dir: Path) -> None:
    card = json.loads((repo_models_dir / "fashion-cnn.json").read_text())
    stair = card["staircase"]
    assert 0 < stair["min_eps"] < 0.25 and stair["min_eps_255"] == round(stair["min_eps"] * 255)
    assert stair["n"] >= 1000 and stair["rule"]
    assert stair["measured"][-1]["fooled_rate"] >= 0.5
    assert all(row["fooled_rate"] < 0.5 for row in stair["measured"][:-1])
    assert all(set(row) == {"eps", "fooled_rate", "n"} for row in stair["measured"])
    measured = {(r["attack"], r["eps"]) for r in card["robustness"]["results"]}
    assert measured == {(a, e) for a in ("fgsm", "pgd") for e in (0.05, 0.1, 0.2)}
    assert card["robustness"]["n"] == 1000
    assert card["training"]["command"].startswith("arena train --pack fashion --seed ")
    assert card["architecture"]["parameters"] == sum(p.numel() for p in model.net.parameters())
    assert card["data"]["train_size"] == 60_000 and card["data"]["test_size"] == 10_000


def test_markdown_card_is_generated_from_json(repo_models_dir: Path) -> None:
    card = json.loads((repo_models_dir / "fashion-cnn.json").read_text())
    assert (repo_models_dir / "fashion-cnn.md").read_text() == render_markdown(card)


def test_forward_normalises_pixel_inputs(model: ArenaModel) -> None:
    x = torch.rand(4, 1, 28, 28)
    expected = model.net((x - 0.2860) / 0.3530)
    torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((1, 28, 28), torch.float32), ((2, 3, 28, 28), torch.float32), ((2, 1, 32, 32), torch.float32)],
)
def test_forward_rejects_wrong_shapes(model: ArenaModel, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    with pytest.raises(ValueError, match=r"expects images shaped \(B,1,28,28\)"):
        model(torch.zeros(shape, dtype=dtype))


def test_forward_rejects_integer_pixels(model: ArenaModel) -> None:
    with pytest.raises(ValueError, match="float pixel values"):
        model(torch.zeros((1, 1, 28, 28), dtype=torch.uint8))


def test_wrapper_owns_a_copy_of_the_net() -> None:
    linear = nn.Linear(4, 2)
    net = nn.Sequential(nn.Flatten(), linear)
    wrapped = ArenaModel(net, mean=(0.5,), std=(0.5,), image_shape=(1, 2, 2), num_classes=2)
    before = wrapped(torch.ones(1, 1, 2, 2)).clone()
    with torch.no_grad():
        linear.weight.add_(1.0)
    assert net.training and linear.weight.requires_grad  # the caller's module is untouched
    assert torch.equal(wrapped(torch.ones(1, 1, 2, 2)), before)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mean": (0.5, 0.5)}, "one value per channel"),
        ({"std": (0.0,)}, "std must be positive"),
        ({"bounds": (1.0, 0.0)}, "low < high"),
    ],
)
def test_wrapper_rejects_bad_preprocessing(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"mean": (0.5,), "std": (0.5,), "image_shape": (1, 2, 2), "num_classes": 2}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ArenaModel(nn.Flatten(), **args)  # type: ignore[arg-type]


def test_missing_checkpoint_says_how_to_train(tmp_path: Path) -> None:
    with pytest.raises(OpponentMissing) as info:
        load_opponent("fashion-cnn", models_dir=tmp_path)
    assert "arena train --pack fashion" in str(info.value)
    assert str(tmp_path / "fashion-cnn.safetensors") in str(info.value)


def test_checkpoint_not_matching_its_card_is_refused(tmp_path: Path, repo_models_dir: Path) -> None:
    shutil.copy(repo_models_dir / "fashion-cnn.safetensors", tmp_path)
    card = json.loads((repo_models_dir / "fashion-cnn.json").read_text())
    card["checkpoint"]["sha256"] = "0" * 64
    (tmp_path / "fashion-cnn.json").write_text(json.dumps(card))
    with pytest.raises(OpponentCorrupt, match="sha256 differs"):
        load_opponent("fashion-cnn", models_dir=tmp_path)


def test_opponent_registry() -> None:
    assert "fashion-cnn" in available_opponents()
    assert opponent_pack("fashion-cnn") == "fashion"
    with pytest.raises(UnknownName, match="choose one of: .*fashion-cnn"):
        load_opponent("resnet-9000")


def test_importing_app_ml_does_not_start_the_service() -> None:
    prefixes = ("app.ml.service.in_process", "app.web", "app.api", "app.game", "app.db")
    code = f"import sys, app.ml; print(sorted(m for m in sys.modules if m.startswith({prefixes!r})))"
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_resolve() -> None:
    import app.ml

    assert sorted(app.ml.__all__) == sorted(app.ml._EXPORTS)
    for name in app.ml.__all__:
        assert getattr(app.ml, name) is not None

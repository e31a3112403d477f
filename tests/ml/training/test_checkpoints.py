"""Writing a checkpoint and its card: loadable, shareable, and never half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from app.ml import ArenaModel, load_opponent
from app.ml.opponents.cards import render_markdown
from app.ml.training import checkpoints


def _state_and_card(model: ArenaModel) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    state = {k: v.contiguous() for k, v in model.net.state_dict().items()}
    card = json.loads(json.dumps(model.card))
    return state, card


def test_save_writes_a_loadable_checkpoint_and_card(model: ArenaModel, tmp_path: Path) -> None:
    state, card = _state_and_card(model)
    checkpoints.save_checkpoint(state, card, tmp_path, "fashion-cnn")
    loaded = load_opponent("fashion-cnn", models_dir=tmp_path)
    images = torch.rand(3, 1, 28, 28)
    assert torch.equal(loaded(images), model(images))
    assert (tmp_path / "fashion-cnn.md").read_text() == render_markdown(loaded.card)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fashion-cnn.json",
        "fashion-cnn.md",
        "fashion-cnn.safetensors",
    ]
    assert (tmp_path / "fashion-cnn.safetensors").stat().st_mode & 0o044 == 0o044


def test_interrupted_save_keeps_the_previous_files(
    model: ArenaModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, card = _state_and_card(model)
    checkpoints.save_checkpoint(state, card, tmp_path, "fashion-cnn")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def interrupted(tensors: object, filename: str, metadata: object = None) -> None:
        Path(filename).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save_checkpoint(state, dict(card), tmp_path, "fashion-cnn")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert not [name for name in os.listdir(tmp_path) if "tmp" in name]

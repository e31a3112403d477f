"""The committed CartPole agent and replica, loaded from the repository's ``models/`` (the files the game ships)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.ml.agents.net import QNetwork, load_agent
from app.ml.agents.train import AGENT_NAME, REPLICA_NAME

REMAKE = "python -m app.ml.agents.train"


def _load(models_dir: Path, name: str) -> QNetwork:
    path = models_dir / f"{name}.safetensors"
    if not path.exists():
        pytest.fail(f"{path} is missing; make it with `{REMAKE}`")
    return load_agent(path)


@pytest.fixture(scope="session")
def agent(repo_models_dir: Path) -> QNetwork:
    return _load(repo_models_dir, AGENT_NAME)


@pytest.fixture(scope="session")
def replica(repo_models_dir: Path) -> QNetwork:
    return _load(repo_models_dir, REPLICA_NAME)

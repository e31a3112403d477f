"""Fixtures for the ML tests: the real Fashion-MNIST pack and the committed ``fashion-cnn`` checkpoint.

The checkpoint is loaded from the repository's ``models/`` folder on purpose (not ``ARENA_MODELS_DIR``), so
these tests check the very file the game ships; when it is missing they fail with the command that makes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
import torch

from app.config import PROJECT_ROOT
from app.ml import ArenaModel, get_pack, load_opponent
from app.ml.packs import DataPack
from app.ml.service.in_process import InProcessModelService

REPO_MODELS = PROJECT_ROOT / "models"


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Run the ML tests on one intra-op thread, and give the previous setting back afterwards.

    The tests use small batches, where a second thread barely helps; but when the CPU is shared (CI runners,
    other test processes) each OpenMP parallel region waits for a descheduled thread, and on 2 cores the suite
    measured 74 s with two threads against 15 s with one.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def repo_models_dir() -> Path:
    return REPO_MODELS


@pytest.fixture(scope="session")
def pack() -> DataPack:
    return get_pack("fashion")


@pytest.fixture(scope="session")
def model() -> ArenaModel:
    return load_opponent("fashion-cnn", models_dir=REPO_MODELS)


@pytest.fixture(scope="session")
def test_images(pack: DataPack) -> tuple[torch.Tensor, torch.Tensor]:
    """The first 256 test images (float (256,1,28,28) in [0,1]) and their labels."""
    return pack.tensors("test", n=256)


@pytest.fixture(scope="session")
def mlp_model() -> ArenaModel:
    """The committed ``fashion-mlp``: a forward pass of 256 images costs ~2 ms against the CNN's ~100 ms here, so
    the cross-checks whose references query or differentiate the model hundreds of times per image (Square, CW,
    DeepFool within a cap) run on it, on four times the images, in a few seconds."""
    return load_opponent("fashion-mlp", models_dir=REPO_MODELS)


@pytest.fixture(scope="session")
def many_test_images(pack: DataPack) -> tuple[torch.Tensor, torch.Tensor]:
    """The first 1,024 test images and their labels."""
    return pack.tensors("test", n=1024)


@asynccontextmanager
async def running_model_service(*opponents: str, **options: object) -> AsyncIterator[InProcessModelService]:
    service = InProcessModelService(opponents=opponents, device="cpu", **options)  # type: ignore[arg-type]
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


StartModelService = Callable[..., AbstractAsyncContextManager[InProcessModelService]]


@pytest.fixture
def model_service() -> StartModelService:
    """``async with model_service("fashion-cnn", max_batch=8) as service:`` a started in-process model service on the
    CPU with these opponents and options, stopped when the block ends, even when it fails."""
    return running_model_service

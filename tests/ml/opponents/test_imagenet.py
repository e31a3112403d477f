"""The ImageNet opponents: packaged weights load on this torch, the preprocessing is the reference one, and the
class mapping is right on sample photos whose class is known."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from tests.imagenet import needs_imagenet, sample

pytestmark = needs_imagenet

CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
# photo -> classes its top-1 must be one of (what the photo shows, in ImageNet's vocabulary)
KNOWN = {
    "chelsea.png": CATS,  # scikit-image: Stefan van der Walt's cat Chelsea
    "coffee.png": {"espresso", "cup", "coffee mug"},  # scikit-image: a cup of coffee
    "motorcycle_left.png": {"moped", "motor scooter"},  # scikit-image: a motorbike
    "china.jpg": {"palace", "pagoda", "bell cote"},  # scikit-learn: the Summer Palace, Beijing
}


def test_the_class_file_is_torchvisions_list() -> None:
    from app.ml.opponents.imagenet import CLASS_FILE, class_names, torchvision_class_names

    assert list(class_names()) == torchvision_class_names()
    assert json.loads(CLASS_FILE.read_text())["classes"][285] == "Egyptian cat"


def test_preprocessing_is_the_reference_one(engine: Any) -> None:
    import torch

    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        wrapped = engine.model(x)
        direct = engine.model.net((x * 255 - 127) / 128)
    torch.testing.assert_close(wrapped, direct, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_lite0_top1_on_photos_with_known_classes(engine: Any, name: str) -> None:
    probs = engine.probabilities(sample(name))
    top1 = engine.class_names[int(np.argmax(probs))]
    assert top1 in KNOWN[name], (name, engine.top(probs))


@pytest.mark.slow
def test_the_transfer_target_lite2_loads_and_sees_the_cat() -> None:
    from app.ml.cloak.engine import CloakEngine
    from app.ml.opponents.imagenet import TRANSFER_TARGET, load_imagenet_model

    lite2 = load_imagenet_model(TRANSFER_TARGET)
    assert lite2.image_shape == (3, 260, 260)
    probe = CloakEngine(model=lite2)
    probs = probe.probabilities(sample("chelsea.png"))
    assert probe.class_names[int(np.argmax(probs))] in CATS

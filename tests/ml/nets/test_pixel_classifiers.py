"""The scikit-learn opponents: their arrays, evaluated by our torch code, are scikit-learn's models exactly.

Tiny estimators fitted here on 2,000 training images (a second or two) are exported, reloaded through
safetensors and compared with scikit-learn's own ``predict_proba`` on 300 test images; the committed opponents
are checked against their cards, and the forest is refused by white-box attacks with the attacks that do work.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from app.ml import ArenaModel, get_attack, load_opponent
from app.ml.nets.pixel_classifiers import PixelLogisticRegression, PixelTreeEnsemble
from app.ml.opponents.specs import available_opponents, opponent_spec
from app.ml.packs import DataPack
from app.ml.training.scikit import forest_state, logistic_state, pixels, round_down_float32

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is in the ml-extra extra: pip install -e '.[ml-extra]'")
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

MAX_CHECKPOINT_BYTES = 5 * 1024 * 1024
CARD_KEYS = ("name", "description", "architecture", "differentiable", "clean_accuracy", "staircase", "robustness")


@pytest.fixture(scope="module")
def small_train(pack: DataPack) -> tuple[np.ndarray, np.ndarray]:
    images, labels = pack.tensors("train", n=2000)
    return pixels(images), labels.numpy()


@pytest.fixture(scope="module")
def test300(pack: DataPack) -> torch.Tensor:
    return pack.tensors("test", n=300)[0]


def _roundtrip(state: dict[str, torch.Tensor], tmp_path: Path) -> dict[str, torch.Tensor]:
    path = tmp_path / "ckpt.safetensors"
    save_file(state, str(path))
    return load_file(path)


def test_forest_arrays_reproduce_predict_proba(
    small_train: tuple[np.ndarray, np.ndarray], test300: torch.Tensor, tmp_path: Path
) -> None:
    forest = RandomForestClassifier(n_estimators=4, min_samples_leaf=3, random_state=0).fit(*small_train)
    net = PixelTreeEnsemble.from_state_dict(_roundtrip(forest_state(forest), tmp_path))
    expected = forest.predict_proba(pixels(test300))
    got = net.predict_proba(test300).numpy()
    assert np.abs(expected - got).max() <= 1e-12
    assert np.array_equal(expected.argmax(1), got.argmax(1))
    # The leaves reached are scikit-learn's own leaves, tree by tree.
    leaves = net.leaves(test300)
    for t, tree in enumerate(forest.estimators_):
        sk_leaf = torch.from_numpy(tree.apply(pixels(test300))).to(torch.int64)
        assert torch.equal(net.leaf_of_node[net.roots[t] + sk_leaf], leaves[:, t])


def test_logistic_regression_arrays_reproduce_predict_proba(
    small_train: tuple[np.ndarray, np.ndarray], test300: torch.Tensor, tmp_path: Path
) -> None:
    x, y = small_train
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 30 iterations do not converge; the export must match anyway
        model = LogisticRegression(max_iter=30, tol=1e-3).fit(x.astype(np.float64), y)
    net = PixelLogisticRegression.from_state_dict(_roundtrip(logistic_state(model), tmp_path))
    expected = model.predict_proba(pixels(test300))
    got = net.predict_proba(test300).numpy()
    assert np.abs(expected - got).max() <= 1e-12
    assert np.array_equal(expected.argmax(1), got.argmax(1))
    # The logits ArenaModel returns are log-probabilities, so softmax gives predict_proba back.
    assert np.abs(net(test300).double().softmax(1).numpy() - expected).max() < 1e-6


@given(st.floats(-2.0, 2.0, allow_nan=False), st.lists(st.floats(-2.0, 2.0, width=32), min_size=1, max_size=20))
def test_float32_thresholds_keep_every_decision(threshold: float, xs: list[float]) -> None:
    t64 = np.array([threshold], dtype=np.float64)
    t32 = round_down_float32(t64)
    x = np.array(xs, dtype=np.float32)
    assert np.array_equal(x.astype(np.float64) <= t64[0], x <= t32[0])
    # including the float32 values right next to the threshold
    near = np.array([t32[0], np.nextafter(t32[0], np.float32(np.inf))], dtype=np.float32)
    assert np.array_equal(near.astype(np.float64) <= t64[0], near <= t32[0])


def test_corrupt_forest_arrays_are_refused() -> None:
    state = {k: torch.zeros(3, dtype=torch.int32) for k in ("feature", "left", "right", "leaf_of_node")}
    with pytest.raises(ValueError, match="needs tensors"):
        PixelTreeEnsemble.from_state_dict(state)


def test_registry_lists_every_opponent() -> None:
    assert {"fashion-cnn", "fashion-resnet", "fashion-mlp", "fashion-logreg", "fashion-forest"} <= set(
        available_opponents()
    )
    assert opponent_spec("fashion-forest").differentiable is False
    assert opponent_spec("fashion-logreg").differentiable is True
    assert opponent_spec("fashion-resnet").train_command == "arena train --opponent fashion-resnet"
    assert opponent_spec("fashion-cnn").train_command == "arena train --pack fashion"


@pytest.mark.parametrize("name", ["fashion-resnet", "fashion-mlp", "fashion-logreg", "fashion-forest"])
def test_committed_opponent_is_small_and_its_card_complete(name: str, repo_models_dir: Path) -> None:
    checkpoint = repo_models_dir / f"{name}.safetensors"
    assert checkpoint.stat().st_size < MAX_CHECKPOINT_BYTES
    card = json.loads((repo_models_dir / f"{name}.json").read_text())
    for key in CARD_KEYS:
        assert key in card, key
    assert card["differentiable"] is opponent_spec(name).differentiable
    assert card["staircase"]["min_eps"] > 0 and card["robustness"]["n"] >= 500
    assert card["training"]["command"].startswith(f"arena train --opponent {name}")
    if opponent_spec(name).kind == "sklearn":
        assert card["equivalence"]["max_abs_diff"] <= 1e-12 and card["equivalence"]["argmax_agreement"] == 1.0


@pytest.mark.parametrize("name", ["fashion-mlp", "fashion-logreg", "fashion-forest", "fashion-resnet"])
def test_committed_opponent_reproduces_its_card(name: str, repo_models_dir: Path, pack: DataPack) -> None:
    """Clean accuracy on the robustness subset (the first 1,000 test images), exactly as the card says."""
    model = load_opponent(name, models_dir=repo_models_dir)
    assert model.differentiable is opponent_spec(name).differentiable
    n = model.card["robustness"]["n"]
    images, labels = pack.tensors("test", n=n)
    with torch.no_grad():
        correct = int((model(images).argmax(1) == labels).sum())
    assert correct / n == model.card["robustness"]["clean_accuracy"]


@pytest.fixture(scope="module")
def forest(repo_models_dir: Path) -> ArenaModel:
    return load_opponent("fashion-forest", models_dir=repo_models_dir)


@pytest.mark.parametrize("attack", ["fgsm", "pgd", "cw"])
def test_white_box_attacks_refuse_the_forest_and_name_the_alternatives(
    attack: str, forest: ArenaModel, test300: torch.Tensor, pack: DataPack
) -> None:
    labels = pack.tensors("test", n=4)[1]
    with pytest.raises(ValueError, match="not differentiable") as info:
        get_attack(attack)(forest, test300[:4], labels, 0.1)
    for name in ("square", "hopskipjump", "transfer"):
        assert name in str(info.value)


def test_query_attack_works_on_the_forest(forest: ArenaModel, test300: torch.Tensor, pack: DataPack) -> None:
    images, labels = test300[:16], pack.tensors("test", n=16)[1]
    result = get_attack("square", max_queries=100)(
        forest, images, labels, 0.15, generator=torch.Generator().manual_seed(0)
    )
    assert torch.all((result.adversarial - images).abs() <= torch.tensor(0.15))  # float32 eps, as attacks use
    with torch.no_grad():
        clean_right = forest(images).argmax(1) == labels
    assert int((clean_right & result.success).sum()) >= 1  # it fools the forest on some images
    assert result.queries is not None and int(result.queries.max()) <= 100

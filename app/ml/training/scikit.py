"""Train the scikit-learn opponents, store them as plain arrays, and prove the torch evaluator matches them.

scikit-learn is needed only here (``pip install -e '.[ml-extra]'``): the checkpoint holds arrays, and the game
evaluates them with :mod:`app.ml.nets.pixel_classifiers`. Before anything is written, the evaluator's
probabilities are compared with the estimator's own ``predict_proba`` on test images, and a mismatch aborts
the run, so a committed card can never describe a model the game does not actually run.
"""

from __future__ import annotations

import logging
import time
import warnings
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch
from torch import Tensor

from app.ml.measure.evaluation import clean_accuracy, evaluate_robustness, find_min_effective_eps, progress_bar
from app.ml.model import ArenaModel
from app.ml.opponents import cards
from app.ml.opponents.specs import OpponentSpec
from app.ml.packs import DataPack, get_pack
from app.ml.training.checkpoints import data_section, provenance, save_checkpoint
from app.ml.training.options import TrainingOptions, torch_threads

logger = logging.getLogger(__name__)

EQUIVALENCE_N = 500
# Agreement the evaluator must reach with scikit-learn's predict_proba (float64; differences come only from
# the order of summation in the matrix product and the softmax).
EQUIVALENCE_TOL = 1e-12
# Non-differentiable opponents: the card measures the attacks rounds can use on them.
NON_DIFFERENTIABLE_EPS = (0.1,)
NON_DIFFERENTIABLE_ATTACKS: dict[str, dict[str, Any]] = {
    "square": {"max_queries": 1000},
    "transfer": {"surrogate": "fashion-cnn", "base": "pgd", "steps": 20},
}
NON_DIFFERENTIABLE_STAIRCASE = ("square", {"max_queries": 1000})
INPUT_TREES = "the 784 pixels of each training image as float32 in [0,1], no augmentation"
INPUT_LOGISTIC = (
    "the 784 pixels of each training image as float32 in [0,1], converted (exactly) to float64 so that "
    "scikit-learn fits float64 coefficients; no augmentation"
)


def _require_sklearn() -> Any:
    try:  # an optional extra: only training these opponents needs it
        import sklearn
    except ImportError as exc:
        raise RuntimeError(
            "training the scikit-learn opponents needs scikit-learn: `.venv/bin/pip install -e '.[ml-extra]'` "
            "(or `make install`); playing against them does not"
        ) from exc
    return sklearn


def pixels(images: Tensor) -> np.ndarray:
    """(N,1,28,28) float32 tensor in [0,1] -> (N,784) float32 array, exactly what the evaluator flattens."""
    return images.flatten(1).numpy().astype(np.float32, copy=False)


def logistic_state(estimator: Any) -> dict[str, Tensor]:
    return {
        "coef": torch.from_numpy(np.ascontiguousarray(estimator.coef_, dtype=np.float64)),
        "intercept": torch.from_numpy(np.ascontiguousarray(estimator.intercept_, dtype=np.float64)),
    }


def round_down_float32(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 threshold: for float32 pixels, ``x <= t`` iff ``x <= result``."""
    out = threshold.astype(np.float32)
    too_high = out.astype(np.float64) > threshold
    out[too_high] = np.nextafter(out[too_high], np.float32(-np.inf))
    return out


def forest_state(forest: Any) -> dict[str, Tensor]:
    """Flatten every tree of a fitted forest into one node table (see PixelTreeEnsemble for the layout)."""
    n_classes = int(forest.n_classes_)
    feature, threshold, left, right, leaf_of_node, leaf_proba, roots = [], [], [], [], [], [], []
    offset = leaf_offset = max_depth = 0
    for tree in forest.estimators_:
        t = tree.tree_
        n = int(t.node_count)
        is_leaf = t.children_left == -1
        leaf_ids = np.full(n, -1, dtype=np.int64)
        leaf_ids[is_leaf] = leaf_offset + np.arange(int(is_leaf.sum()))
        # The same steps as DecisionTreeClassifier.predict_proba, applied to the leaf rows.
        proba = t.value.reshape(n, -1)[is_leaf][:, :n_classes].copy()
        normalizer = proba.sum(axis=1)[:, np.newaxis]
        normalizer[normalizer == 0.0] = 1.0
        proba /= normalizer
        feature.append(np.where(is_leaf, -1, t.feature))
        threshold.append(np.where(is_leaf, np.float32(0), round_down_float32(t.threshold)))
        left.append(np.where(is_leaf, -1, t.children_left + offset))
        right.append(np.where(is_leaf, -1, t.children_right + offset))
        leaf_of_node.append(leaf_ids)
        leaf_proba.append(proba)
        roots.append(offset)
        offset += n
        leaf_offset += int(is_leaf.sum())
        max_depth = max(max_depth, int(t.max_depth))
    return {
        "feature": torch.from_numpy(np.concatenate(feature).astype(np.int16)),
        "threshold": torch.from_numpy(np.concatenate(threshold).astype(np.float32)),
        "left": torch.from_numpy(np.concatenate(left).astype(np.int32)),
        "right": torch.from_numpy(np.concatenate(right).astype(np.int32)),
        "leaf_of_node": torch.from_numpy(np.concatenate(leaf_of_node).astype(np.int32)),
        "leaf_proba": torch.from_numpy(np.concatenate(leaf_proba).astype(np.float64)),
        "roots": torch.tensor(roots, dtype=torch.int32),
        "max_depth": torch.tensor([max_depth], dtype=torch.int32),
    }


def estimator_state(spec: OpponentSpec, estimator: Any) -> dict[str, Tensor]:
    if spec.estimator.endswith("LogisticRegression"):
        return logistic_state(estimator)
    if spec.estimator.endswith(("RandomForestClassifier", "ExtraTreesClassifier")):
        return forest_state(estimator)
    raise ValueError(f"no array export for estimator {spec.estimator!r}")


def compare_with_sklearn(estimator: Any, net: torch.nn.Module, images: Tensor) -> dict[str, Any]:
    """Max |difference| of predict_proba and the share of images where the two predict the same class."""
    if hasattr(estimator, "n_jobs"):
        estimator.set_params(n_jobs=1)  # trees summed in order, as the evaluator does
    expected = estimator.predict_proba(pixels(images))
    with torch.no_grad():
        got = net.predict_proba(images).cpu().numpy()  # type: ignore[operator]
    diff = float(np.abs(expected - got).max())
    agreement = float((expected.argmax(1) == got.argmax(1)).mean())
    return {"n": len(images), "max_abs_diff": diff, "argmax_agreement": agreement, "tolerance": EQUIVALENCE_TOL}


def _build_estimator(spec: OpponentSpec, seed: int, threads: int | None) -> Any:
    _require_sklearn()
    # Imported here, after the check above: scikit-learn is an optional extra.
    if spec.estimator == "sklearn.linear_model.LogisticRegression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(**spec.estimator_params, random_state=seed)
    if spec.estimator == "sklearn.ensemble.RandomForestClassifier":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(**spec.estimator_params, random_state=seed, n_jobs=threads)
    raise ValueError(f"unknown estimator {spec.estimator!r}")


def _fit(spec: OpponentSpec, estimator: Any, x: np.ndarray, y: np.ndarray, progress: bool) -> Any:
    """Fit with progress: a forest grows one tree at a time (warm start, same trees as one fit), a linear model
    shows a running clock (lbfgs reports no progress)."""
    with progress_bar(progress) as bar:
        if "n_estimators" in estimator.get_params():
            total = int(estimator.n_estimators)
            task = bar.add_task("growing trees", total=total)
            estimator.set_params(warm_start=True)
            for k in range(1, total + 1):
                estimator.set_params(n_estimators=k)
                estimator.fit(x, y)
                bar.update(task, completed=k)
            estimator.set_params(warm_start=False)
        else:
            task = bar.add_task(f"fitting {type(estimator).__name__} (no progress reported)", total=None)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=UserWarning)
                estimator.fit(x, y)
            bar.update(task, total=1, completed=1)
    return estimator


def _json_params(estimator: Any) -> dict[str, Any]:
    return {k: v for k, v in sorted(estimator.get_params().items()) if isinstance(v, str | int | float | bool | None)}


def train_sklearn(spec: OpponentSpec, options: TrainingOptions) -> dict[str, Any]:
    """Fit the estimator, export and check its arrays, measure it like the nets, and write checkpoint + card."""
    sklearn = _require_sklearn()
    name, seed, threads, progress = spec.name, options.seed, options.threads, options.progress
    models_dir = options.output_dir()
    pack: DataPack = get_pack(spec.pack_name, options.data_dir)
    train_images, train_labels = pack.tensors("train")
    test_images, _ = pack.tensors("test")
    with torch_threads(threads):
        estimator = _build_estimator(spec, seed, threads)
        started = time.perf_counter()
        x = pixels(train_images)
        if spec.estimator.endswith("LogisticRegression"):
            # float32 input would make scikit-learn fit (and predict) in float32; float64 gives the exact model
            # the evaluator computes. The float32 pixels convert to float64 exactly.
            x = x.astype(np.float64)
        _fit(spec, estimator, x, train_labels.numpy(), progress)
        wall_time = time.perf_counter() - started
        state = estimator_state(spec, estimator)
        net = spec.build_net(state)
        equivalence = compare_with_sklearn(estimator, net, test_images[:EQUIVALENCE_N])
        if equivalence["max_abs_diff"] > EQUIVALENCE_TOL or equivalence["argmax_agreement"] < 1.0:
            raise RuntimeError(f"the torch evaluator of {name} does not reproduce scikit-learn: {equivalence}")
        identity = [0.0] * pack.channels, [1.0] * pack.channels
        model = ArenaModel(
            net,
            mean=identity[0],
            std=identity[1],
            image_shape=pack.image_shape,
            num_classes=pack.num_classes,
            name=name,
            pack_name=pack.name,
            differentiable=spec.differentiable,
        )
        measure_started = time.perf_counter()
        accuracy, accuracy_n = clean_accuracy(model, pack)
        logger.info("%s clean test accuracy %.4f on %d images", name, accuracy, accuracy_n)
        if spec.differentiable:
            robustness = evaluate_robustness(model, pack, n=1000, seed=seed, progress=progress)
            staircase = find_min_effective_eps(model, pack, n=1000, seed=seed, progress=progress)
        else:
            robustness = evaluate_robustness(
                model,
                pack,
                n=1000,
                eps_list=NON_DIFFERENTIABLE_EPS,
                attacks=NON_DIFFERENTIABLE_ATTACKS,
                seed=seed,
                progress=progress,
            )
            attack, params = NON_DIFFERENTIABLE_STAIRCASE
            staircase = find_min_effective_eps(
                model, pack, n=1000, seed=seed, progress=progress, attack=attack, attack_params=params
            )
        measure_time = time.perf_counter() - measure_started
        where = provenance()

    extra: dict[str, Any] = {}
    if hasattr(estimator, "n_iter_"):
        extra["iterations"] = int(np.max(estimator.n_iter_))
    if "leaf_proba" in state:
        extra["trees"] = int(state["roots"].numel())
        extra["nodes"] = int(state["feature"].numel())
        extra["leaves"] = int(state["leaf_proba"].shape[0])
        extra["max_depth"] = int(state["max_depth"].item())
    card: dict[str, Any] = {
        "schema_version": cards.CARD_SCHEMA_VERSION,
        "name": name,
        "pack": pack.name,
        "description": spec.description,
        "differentiable": spec.differentiable,
        "notes": spec.notes,
        "created": datetime.now(UTC).date().isoformat(),
        "data": data_section(pack, len(train_labels), len(test_images)),
        "architecture": {
            "net": type(net).__name__,
            "layers": spec.architecture,
            "parameters": sum(v.numel() for k, v in state.items() if k != "max_depth"),
            "estimator": spec.estimator,
            **extra,
        },
        "preprocessing": {"bounds": list(model.bounds), "mean": identity[0], "std": identity[1]},
        "training": {
            "command": f"{spec.train_command} --seed {seed}",
            "seed": seed,
            "estimator": spec.estimator,
            "hyperparameters": _json_params(estimator),
            "library": f"scikit-learn {sklearn.__version__}",
            "input": INPUT_LOGISTIC if spec.estimator.endswith("LogisticRegression") else INPUT_TREES,
            "wall_time_s": round(wall_time, 1),
            "measure_time_s": round(measure_time, 1),
            "device": "cpu",
            **where,
        },
        "equivalence": {
            **equivalence,
            "subset": f"first {equivalence['n']} test images",
            "rule": "the torch evaluator's predict_proba against scikit-learn's on the same float32 pixels",
        },
        "clean_accuracy": accuracy,
        "clean_accuracy_n": accuracy_n,
        "robustness": robustness,
        "staircase": staircase,
        "checkpoint": {"file": cards.checkpoint_path(models_dir, name).name, "sha256": ""},
    }
    save_checkpoint(state, card, models_dir, name)
    return card

"""Why the machine fails (app/ml/measure/explain.py) on the real fashion-cnn: the slice's geometry, saliency,
linearity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.ml import ArenaModel, load_opponent
from app.ml.attacks import get_attack
from app.ml.measure.explain import classify_points, explain, image_to_input, r_squared, slice_axes, unit_vector
from app.ml.packs import DataPack
from app.ml.service.explain_contracts import ExplainJob
from app.ml.service.tensors import quantize_within_budget, to_tensor


@pytest.fixture(scope="module")
def attacked(model: ArenaModel, pack: DataPack) -> tuple[np.ndarray, np.ndarray, int]:
    """One test image the model gets right and PGD fools at eps 0.1, as the uint8 pixels a round stores."""
    images, labels = pack.load_split("test")
    clean = images[:8]
    x = to_tensor(clean, torch.device("cpu"))
    y = torch.from_numpy(labels[:8].astype(np.int64))
    result = get_attack("pgd")(model, x, y, 0.1, generator=torch.Generator().manual_seed(0))
    shown = quantize_within_budget(clean, result.adversarial, np.full(8, 0.1))
    with torch.inference_mode():
        right = model(x).argmax(1) == y
        fooled = model(to_tensor(shown, torch.device("cpu"))).argmax(1) != y
    index = int(torch.nonzero(right & fooled)[0])
    return clean[index], shown[index], int(labels[index])


def job_for(clean: np.ndarray, shown: np.ndarray, label: int, **overrides: object) -> ExplainJob:
    values: dict[str, object] = {"opponent": "fashion-cnn", "clean": clean, "shown": shown, "true_label": label}
    values.update({"eps": 0.1, "norm": "linf", "seed": 7})
    values.update(overrides)
    return ExplainJob(**values)  # type: ignore[arg-type]


def answer(model: ArenaModel, image: np.ndarray) -> int:
    with torch.inference_mode():
        return int(model(to_tensor(image[None], torch.device("cpu"))).argmax(1))


def test_the_slice_puts_the_clean_and_the_shown_image_where_the_model_answers_them(
    model: ArenaModel, attacked: tuple[np.ndarray, np.ndarray, int]
) -> None:
    clean, shown, label = attacked
    result = explain(model, job_for(clean, shown, label))
    assert result.clean_label == answer(model, clean) == label
    assert result.shown_label == answer(model, shown) != label
    row = result.slice_center_row
    assert result.slice_b[row] == 0.0 and result.slice_a[result.slice_origin] == 0.0
    distance = float(np.linalg.norm((shown.astype(np.float64) - clean) / 255.0))
    assert result.shown_distance == pytest.approx(distance)
    assert result.slice_a[result.slice_shown] == pytest.approx(distance)
    # Both points lie well inside the grid, and the grid's classes there are the model's own answers.
    assert 0 < result.slice_origin < result.slice_shown < len(result.slice_a) - 1
    assert result.slice_labels[row, result.slice_origin] == result.image_point_label == label
    assert result.slice_labels[row, result.slice_shown] == result.shown_point_label == result.shown_label
    assert result.slice_labels.shape == (41, 41) and result.slice_evaluated < 41 * 41
    assert {label, result.shown_label} <= set(np.unique(result.slice_labels).tolist())


def test_the_coarse_to_fine_slice_matches_every_point_classified(
    model: ArenaModel, attacked: tuple[np.ndarray, np.ndarray, int]
) -> None:
    clean, shown, label = attacked
    result = explain(model, job_for(clean, shown, label, grid_size=21, seed=3))
    x, s = image_to_input(clean, model), image_to_input(shown, model)
    u = unit_vector((s - x)[0])
    draw = torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    v = unit_vector(draw - (draw * u).sum() * u)  # the slice's first draw from the round's seed
    a, b, _, _ = slice_axes(result.shown_distance, 21)
    aa, bb = np.meshgrid(a, b)
    every = classify_points(model, x, u, v, np.stack([aa.ravel(), bb.ravel()], axis=1)).reshape(21, 21)
    assert np.array_equal(every, result.slice_labels)


def test_saliency_and_linearity_have_their_shapes_and_ranges(
    model: ArenaModel, attacked: tuple[np.ndarray, np.ndarray, int]
) -> None:
    clean, shown, label = attacked
    result = explain(model, job_for(clean, shown, label))
    for saliency in (result.saliency_clean, result.saliency_shown):
        assert saliency is not None and saliency.shape == (28, 28) and saliency.dtype == np.float32
        assert saliency.min() >= 0 and saliency.max() > 0
    assert not np.allclose(result.saliency_clean, result.saliency_shown)
    assert result.line_t is not None and result.line_logits is not None
    assert result.line_t[0] == pytest.approx(-0.2) and result.line_t[-1] == pytest.approx(0.2)
    assert result.line_logits.shape == (41, len(result.line_classes))
    assert result.line_classes[:2] == (label, result.shown_label)
    assert all(0.0 <= r2 <= 1.0 for r2 in result.line_r2) and result.linearity_r2 == result.line_r2[0]
    # The loss grows along the gradient's sign: the true class's logit is lower at +2 eps than at -2 eps.
    assert result.line_logits[-1, 0] < result.line_logits[0, 0]
    assert result.unavailable == "" and result.saliency_method == "smoothgrad"


def test_same_round_same_pictures_and_the_model_is_left_as_it_was(
    model: ArenaModel, attacked: tuple[np.ndarray, np.ndarray, int]
) -> None:
    clean, shown, label = attacked
    model.train()
    grad_mode = torch.is_grad_enabled()
    try:
        first = explain(model, job_for(clean, shown, label, grid_size=11, smoothgrad_samples=4, line_points=9))
        assert model.training and all(m.training for m in model.modules())
        assert not any(p.requires_grad for p in model.parameters())
        assert torch.is_grad_enabled() == grad_mode
    finally:
        model.eval()
    second = explain(model, job_for(clean, shown, label, grid_size=11, smoothgrad_samples=4, line_points=9))
    assert np.array_equal(first.slice_labels, second.slice_labels)
    assert np.array_equal(first.saliency_shown, second.saliency_shown)
    other = explain(model, job_for(clean, shown, label, grid_size=11, smoothgrad_samples=4, line_points=9, seed=8))
    assert not np.array_equal(first.saliency_shown, other.saliency_shown)


def test_a_clean_round_still_gets_a_slice_along_the_gradient(
    model: ArenaModel, attacked: tuple[np.ndarray, np.ndarray, int]
) -> None:
    clean, _, label = attacked
    result = explain(model, job_for(clean, clean, label, eps=0.0, grid_size=11))
    assert result.shown_distance == 0.0 and result.slice_shown == result.slice_origin
    assert "gradient" in result.slice_u and result.slice_a[-1] > 0
    assert result.image_point_label == result.shown_point_label == label
    assert result.line_t is not None and result.line_t[-1] > 0


def test_without_gradients_only_the_slice_is_drawn(
    model: ArenaModel, attacked: tuple[np.ndarray, np.ndarray, int]
) -> None:
    clean, shown, label = attacked
    flat = ArenaModel(
        model.net,
        mean=model.mean.flatten().tolist(),
        std=model.std.flatten().tolist(),
        image_shape=model.image_shape,
        num_classes=model.num_classes,
        name="no-gradient",
        differentiable=False,
    )
    result = explain(flat, job_for(clean, shown, label, grid_size=11))
    assert result.saliency_clean is None and result.saliency_shown is None and result.line_t is None
    assert result.linearity_r2 is None and "gradient" in result.unavailable
    assert result.image_point_label == label and result.shown_point_label == result.shown_label
    assert result.slice_labels.shape == (11, 11)


def test_bad_jobs_say_what_to_fix(model: ArenaModel, attacked: tuple[np.ndarray, np.ndarray, int]) -> None:
    clean, shown, label = attacked
    with pytest.raises(ValueError, match="odd"):
        explain(model, job_for(clean, shown, label, grid_size=40))
    with pytest.raises(ValueError, match="differ in shape"):
        explain(model, job_for(clean, shown[:-1], label))
    with pytest.raises(ValueError, match="true_label"):
        explain(model, job_for(clean, shown, 10))


def test_r_squared_of_a_line_a_parabola_and_a_constant() -> None:
    t = np.linspace(-1, 1, 21)
    assert r_squared(t, 3 * t + 1) == pytest.approx(1.0)
    assert r_squared(t, t**2) == pytest.approx(0.0, abs=1e-12)  # symmetric: the best line is flat
    assert r_squared(t, np.full(21, 2.0)) == 1.0


def test_the_forest_gets_its_slice_and_is_told_why_there_is_no_saliency(
    repo_models_dir: Path, attacked: tuple[np.ndarray, np.ndarray, int]
) -> None:
    forest = load_opponent("fashion-forest", models_dir=repo_models_dir)
    assert forest.differentiable is False
    clean, shown, label = attacked
    result = explain(forest, job_for(clean, shown, label, opponent="fashion-forest", grid_size=21))
    assert result.differentiable is False and "gradient" in result.unavailable
    assert result.saliency_clean is None and result.line_logits is None and result.linearity_r2 is None
    assert result.image_point_label == result.clean_label == answer(forest, clean)
    assert result.shown_point_label == result.shown_label == answer(forest, shown)
    assert result.slice_labels.shape == (21, 21) and result.slice_labels.min() >= 0

"""The query interface of black-box attacks: answers only, counted honestly per sample, budget enforced."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from app.config import PROJECT_ROOT
from app.ml import ArenaModel, load_opponent
from app.ml.attacks import QueryBudgetExceeded, QueryCounter, available_attacks, get_attack, queries
from app.ml.attacks.common import bucket_size, forward_bucketed

Batch = tuple[Tensor, Tensor]
BLACK_BOX = [n for n in available_attacks() if get_attack(n).threat_model in ("score", "decision")]
SMALL = {
    "square": {"max_queries": 30},
    "nes": {"max_queries": 30, "samples": 6},
    "hopskipjump": {"max_queries": 60, "initial_evals": 8},
    "genattack": {"max_queries": 30, "population": 4},
    "one-pixel": {"max_queries": 30, "population": 6, "pixels": 2},
    "evadehc": {"max_queries": 30, "candidates": 2, "walk_steps": 3},
}


def test_counts_per_sample_and_refuses_past_the_budget(model: ArenaModel, test_images: Batch) -> None:
    images = test_images[0][:4]
    oracle = QueryCounter(model, 4, budget=5, mode="score")
    probs = oracle.probabilities(images[:2], torch.tensor([0, 2]))
    torch.testing.assert_close(probs.sum(1), torch.ones(2))
    oracle.probabilities(images[[1]].unsqueeze(1).expand(1, 3, 1, 28, 28), torch.tensor([1]))
    assert oracle.counts.tolist() == [1, 3, 1, 0]
    assert oracle.remaining().tolist() == [4, 2, 4, 5]
    with pytest.raises(QueryBudgetExceeded):
        oracle.probabilities(images[[1]].unsqueeze(1).expand(1, 3, 1, 28, 28), torch.tensor([1]))
    assert oracle.counts.tolist() == [1, 3, 1, 0]  # a refused query is not charged and not run
    with pytest.raises(ValueError, match="repeat"):
        oracle.probabilities(images[:2], torch.tensor([3, 3]))
    with pytest.raises(ValueError, match="bounds"):
        oracle.probabilities(images[:1] + 2.0, torch.tensor([3]))


def test_decision_mode_answers_labels_only(model: ArenaModel, test_images: Batch) -> None:
    images = test_images[0][:2]
    oracle = QueryCounter(model, 2, budget=3, mode="decision")
    with pytest.raises(PermissionError):
        oracle.probabilities(images, torch.arange(2))
    labels = oracle.labels(images, torch.arange(2))
    assert labels.dtype == torch.int64 and labels.shape == (2,)
    assert oracle.counts.tolist() == [1, 1]


def test_bucketed_forward_pads_the_shape_and_changes_nothing_else(model: ArenaModel, test_images: Batch) -> None:
    assert [bucket_size(n) for n in (1, 2, 3, 5, 33, 64, 65, 129)] == [1, 2, 4, 8, 64, 64, 128, 192]
    images = test_images[0][:70]
    shapes: list[int] = []
    handle = model.net.register_forward_pre_hook(lambda _m, args: shapes.append(args[0].shape[0]))
    try:
        for n in (3, 37, 70):
            with torch.no_grad():
                torch.testing.assert_close(forward_bucketed(model, images[:n]), model(images[:n]))
    finally:
        handle.remove()
    assert shapes == [4, 3, 64, 37, 128, 70]


@pytest.mark.parametrize("name", BLACK_BOX)
def test_every_model_call_is_a_counted_query(name: str, test_images: Batch, monkeypatch: pytest.MonkeyPatch) -> None:
    """The model sees exactly the counted queries, plus one check per sample once success is read.

    Shape bucketing (padding rows that are dropped again) is switched off so that rows seen are rows asked for.
    """
    monkeypatch.setattr(queries, "forward_bucketed", lambda net, x: net(x))
    model = load_opponent("fashion-cnn", models_dir=PROJECT_ROOT / "models")
    seen = []
    handle = model.net.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[0]))
    images, labels = test_images[0][:8], test_images[1][:8]
    eps = 1.0 if name == "one-pixel" else (5.0 if name == "hopskipjump" else 0.15)
    try:
        result = get_attack(name, **SMALL[name])(model, images, labels, eps, generator=torch.Generator().manual_seed(0))
        assert result.queries is not None
        assert sum(seen) == int(result.queries.sum()), "the attack itself only asks counted questions"
        result.success  # noqa: B018 -- the deferred check, one row per sample
    finally:
        handle.remove()
    assert sum(seen) == int(result.queries.sum()) + 8
    assert int(result.queries.max()) <= SMALL[name]["max_queries"]


@pytest.mark.parametrize("name", ["square", "nes", "genattack", "evadehc"])
def test_fooled_samples_stop_being_queried(name: str, model: ArenaModel, test_images: Batch) -> None:
    """With a generous budget the easy images are fooled early and stop spending queries (the active set)."""
    images, labels = test_images[0][:16], test_images[1][:16]
    params = {**SMALL[name], "max_queries": 200}
    eps = 0.3
    result = get_attack(name, **params)(model, images, labels, eps, generator=torch.Generator().manual_seed(0))
    assert result.queries is not None
    fooled_early = result.success & (result.queries < 200)
    assert int(fooled_early.sum()) >= 1
    assert int(result.queries.min()) < 200


@pytest.mark.parametrize(("name", "least"), [("square", 0.5), ("genattack", 0.5), ("nes", 0.1)])
def test_score_attacks_can_be_targeted(name: str, least: float, model: ArenaModel, test_images: Batch) -> None:
    """Targeted black-box attacks are much harder (NES reaches 1-3 of these 8 targets in 300 queries)."""
    images, labels = test_images[0][:8], test_images[1][:8]
    target = (labels + 1) % 10
    params = {**SMALL[name], "max_queries": 300}
    result = get_attack(name, **params)(
        model, images, labels, 0.3, generator=torch.Generator().manual_seed(0), target=target
    )
    assert torch.equal(result.success, result.logits.argmax(1) == target)
    assert float(result.success.float().mean()) >= least


@pytest.mark.parametrize("name", ["hopskipjump", "evadehc"])
def test_decision_attacks_are_untargeted(name: str, model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images[0][:2], test_images[1][:2]
    with pytest.raises(ValueError, match="untargeted only"):
        get_attack(name, **SMALL[name])(model, images, labels, 0.1, target=labels)


def test_hopskipjump_spends_its_last_queries_on_one_full_estimate(
    model: ArenaModel, test_images: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Probe batches grow with the iteration and the last one is the largest: the budget's tail goes to the last
    gradient estimate instead of a starved extra iteration (at 1,000 queries: ..., 113, 120, then 41 probes before)."""
    probes: list[int] = []
    answer = QueryCounter.labels

    def spy(self: QueryCounter, images: Tensor, idx: Tensor) -> Tensor:
        if images.ndim == 5:
            probes.append(images.shape[1])
        return answer(self, images, idx)

    monkeypatch.setattr(QueryCounter, "labels", spy)
    images, labels = test_images[0][:2], test_images[1][:2]
    with torch.no_grad():
        assert bool((model(images).argmax(1) == labels).all())  # both are attacked, so both spend the budget
    result = get_attack("hopskipjump", max_queries=1000)(
        model, images, labels, 28.0, generator=torch.Generator().manual_seed(0)
    )
    assert result.queries is not None and int(result.queries.min()) >= 1000 - 25  # at most one search's worth unused
    assert probes == sorted(probes) and probes[-1] > 120

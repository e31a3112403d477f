"""Attacks: they fool the committed opponent, never exceed the budget or the bounds, and leave no trace.

Hypothesis drives the budget and bound invariants with small batches and few steps so the suite stays fast.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from torch import Tensor, nn

from app.config import PROJECT_ROOT
from app.ml import ArenaModel, AttackResult, UnknownName, available_attacks, get_attack, load_opponent

Batch = tuple[Tensor, Tensor]


def per_sample_linf(result: AttackResult, images: Tensor) -> Tensor:
    return (result.adversarial - images).abs().flatten(1).amax(1)


@pytest.fixture
def fresh_model() -> ArenaModel:
    """A private copy for tests that change modes or flags, so the shared session model stays pristine."""
    return load_opponent("fashion-cnn", models_dir=PROJECT_ROOT / "models")


def test_registry_lists_the_attacks() -> None:
    names = available_attacks()
    assert {"fgsm", "pgd"} <= set(names) and names == sorted(names)
    with pytest.raises(UnknownName, match="unknown attack 'pgdd'; choose one of: ") as info:
        get_attack("pgdd")
    assert isinstance(info.value, KeyError)
    assert info.value.valid == tuple(names)


def test_pgd_defaults() -> None:
    params = get_attack("pgd").params.model_dump()
    assert params == {"steps": 20, "step_size": None, "random_start": True, "early_stop": False, "stop_on_shown": False}


def test_pgd20_at_eps_0_1_leaves_at_most_10_percent_accuracy(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images
    clean = (model(images).argmax(1) == labels).float().mean().item()
    attack = get_attack("pgd", steps=20, random_start=True)
    result = attack(model, images, labels, 0.1, generator=torch.Generator().manual_seed(0))
    robust = 1.0 - result.success.float().mean().item()
    assert clean >= 0.85
    assert robust <= 0.10


def test_fgsm_lowers_accuracy(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images
    clean = (model(images).argmax(1) == labels).float().mean().item()
    result = get_attack("fgsm")(model, images, labels, 0.1)
    assert 1.0 - result.success.float().mean().item() < clean - 0.3


def test_success_and_logits_are_measured_on_the_returned_images(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images[0][:32], test_images[1][:32]
    result = get_attack("pgd", steps=3)(model, images, labels, 0.03, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(result.adversarial)
    torch.testing.assert_close(result.logits, logits)
    assert torch.equal(result.success, logits.argmax(1) != labels)
    assert torch.equal(result.linf, per_sample_linf(result, images))
    assert result.queries is None


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    batch=st.integers(1, 5),
    name=st.sampled_from(["fgsm", "pgd"]),
    steps=st.integers(1, 3),
    step_size=st.one_of(st.none(), st.floats(1e-3, 0.5)),
    random_start=st.booleans(),
)
def test_budget_and_bounds_hold_per_sample(
    model: ArenaModel,
    test_images: Batch,
    data: st.DataObject,
    batch: int,
    name: str,
    steps: int,
    step_size: float | None,
    random_start: bool,
) -> None:
    start = data.draw(st.integers(0, 256 - batch))
    images, labels = test_images[0][start : start + batch], test_images[1][start : start + batch]
    eps_values = data.draw(
        st.lists(st.sampled_from([0.0, 1 / 255, 0.03, 0.1, 0.3, 1.0]), min_size=batch, max_size=batch)
    )
    eps = torch.tensor(eps_values)
    params = {"steps": steps, "step_size": step_size, "random_start": random_start} if name == "pgd" else {}
    result = get_attack(name, **params)(model, images, labels, eps, generator=torch.Generator().manual_seed(start))
    adv = result.adversarial
    assert adv.shape == images.shape and adv.dtype == images.dtype
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    assert torch.all(per_sample_linf(result, images) <= eps)  # exact, no tolerance
    zero = eps == 0
    assert torch.equal(adv[zero], images[zero])


def test_eps_zero_float_returns_the_images(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images[0][:8], test_images[1][:8]
    result = get_attack("pgd", steps=2)(model, images, labels, 0.0)
    assert torch.equal(result.adversarial, images)
    assert torch.equal(result.success, model(images).argmax(1) != labels)


@pytest.mark.parametrize("name", ["fgsm", "pgd"])
def test_batch_of_one(model: ArenaModel, test_images: Batch, name: str) -> None:
    images, labels = test_images[0][:1], test_images[1][:1]
    result = get_attack(name)(model, images, labels, torch.tensor([0.2]))
    assert result.adversarial.shape == (1, 1, 28, 28)
    assert result.success.shape == (1,) and result.logits.shape == (1, 10)
    assert bool(result.success[0])


def test_step_size_is_absolute(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images[0][:16], test_images[1][:16]
    attack = get_attack("pgd", steps=1, step_size=0.01, random_start=False)
    result = attack(model, images, labels, 0.1)
    assert float(result.linf.max()) == pytest.approx(0.01, abs=1e-6)


def test_per_sample_generators_make_a_sample_independent_of_its_batch(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images[0][:6], test_images[1][:6]
    attack = get_attack("pgd", steps=3, random_start=True)
    eps = torch.tensor([0.02, 0.05, 0.1, 0.03, 0.08, 0.04])
    together = attack(model, images, labels, eps, generator=[torch.Generator().manual_seed(100 + i) for i in range(6)])
    for i in (0, 5):
        alone = attack(
            model,
            images[i : i + 1],
            labels[i : i + 1],
            eps[i : i + 1],
            generator=[torch.Generator().manual_seed(100 + i)],
        )
        assert torch.equal(alone.adversarial[0], together.adversarial[i])
        assert bool(alone.success[0]) == bool(together.success[i])


def test_same_generator_seed_reproduces_and_other_seed_differs(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images[0][:8], test_images[1][:8]
    attack = get_attack("pgd", steps=2)
    first = attack(model, images, labels, 0.05, generator=torch.Generator().manual_seed(7))
    again = attack(model, images, labels, 0.05, generator=torch.Generator().manual_seed(7))
    other = attack(model, images, labels, 0.05, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first.adversarial, again.adversarial)
    assert not torch.equal(first.adversarial, other.adversarial)


def _scramble_state(model: ArenaModel) -> tuple[list[bool], list[bool]]:
    """Put the model in a mixed, unusual state so that restoring it is a real check."""
    model.train()
    list(model.modules())[-1].eval()
    next(model.parameters()).requires_grad_(True)
    return [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()]


@pytest.mark.parametrize("grad_enabled", [True, False])
@pytest.mark.parametrize("name", ["fgsm", "pgd"])
def test_modes_flags_and_grad_state_are_restored(
    fresh_model: ArenaModel, test_images: Batch, grad_enabled: bool, name: str
) -> None:
    modes, flags = _scramble_state(fresh_model)
    images, labels = test_images[0][:4], test_images[1][:4]
    with torch.set_grad_enabled(grad_enabled):
        result = get_attack(name, **({"steps": 2} if name == "pgd" else {}))(fresh_model, images, labels, 0.1)
        assert torch.is_grad_enabled() is grad_enabled
    assert [m.training for m in fresh_model.modules()] == modes
    assert [p.requires_grad for p in fresh_model.parameters()] == flags
    assert next(fresh_model.parameters()).grad is None  # gradients went to the input only
    assert not result.adversarial.requires_grad and result.adversarial.grad_fn is None


class Exploding(nn.Module):
    """Wraps a net and raises on its n-th call, to check the attack cleans up after a failure mid-run."""

    def __init__(self, net: nn.Module, fail_on_call: int) -> None:
        super().__init__()
        self.inner = net
        self.calls = 0
        self.fail_on_call = fail_on_call

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("boom")
        out: Tensor = self.inner(x)
        return out


@pytest.mark.parametrize("grad_enabled", [True, False])
def test_state_is_restored_after_an_exception(model: ArenaModel, test_images: Batch, grad_enabled: bool) -> None:
    exploding = ArenaModel(
        Exploding(model.net, fail_on_call=3),
        mean=(0.2860,),
        std=(0.3530,),
        image_shape=(1, 28, 28),
        num_classes=10,
    )
    modes, flags = _scramble_state(exploding)
    images, labels = test_images[0][:4], test_images[1][:4]
    with torch.set_grad_enabled(grad_enabled):
        with pytest.raises(RuntimeError, match="boom"):
            get_attack("pgd", steps=5)(exploding, images, labels, 0.1)
        assert torch.is_grad_enabled() is grad_enabled
    assert [m.training for m in exploding.modules()] == modes
    assert [p.requires_grad for p in exploding.parameters()] == flags


def test_works_when_called_under_inference_mode(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images[0][:16], test_images[1][:16]
    with torch.inference_mode():
        inference_images = images.clone()
        result = get_attack("pgd", steps=5)(model, inference_images, labels, 0.1)
        assert torch.is_inference_mode_enabled()
    assert float(result.success.float().mean()) > 0.8


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"steps": 0}, ValueError, "steps"),
        ({"steps": 2.5}, ValueError, "steps"),
        ({"steps": True}, ValueError, "steps"),
        ({"steps": "20"}, ValueError, "steps"),
        ({"step_size": -0.01}, ValueError, "step_size"),
        ({"step_size": 2.0}, ValueError, "step_size"),
        ({"random_start": "yes"}, ValueError, "random_start"),
        ({"stpes": 10}, TypeError, "unexpected parameter.*stpes"),
    ],
)
def test_pgd_params_are_validated(params: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        get_attack("pgd", **params)


def test_fgsm_takes_no_params_and_params_are_frozen() -> None:
    with pytest.raises(TypeError, match="valid: none"):
        get_attack("fgsm", steps=3)
    attack = get_attack("pgd", steps=5, step_size=1)  # an int step size is a valid float
    with pytest.raises(ValidationError):
        attack.params.steps = 6  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"eps": -0.1}, ValueError, r"eps must lie in \[0, 1\]"),
        ({"eps": 8.0}, ValueError, "8/255"),
        ({"eps": float("nan")}, ValueError, "finite"),
        ({"eps": torch.tensor([0.1, 0.1])}, ValueError, r"shaped \(4,\)"),
        ({"images": torch.full((4, 1, 28, 28), 1.5)}, ValueError, "within the model's bounds"),
        ({"images": torch.zeros(4, 28, 28)}, ValueError, r"shaped \(B,C,H,W\)"),
        ({"labels": torch.zeros(4, dtype=torch.int32)}, ValueError, "int64"),
        ({"labels": torch.full((4,), 10)}, ValueError, r"labels must lie in 0\.\.9"),
        ({"generator": [torch.Generator()]}, ValueError, "sequence of 4 generators"),
        ({"model": nn.Linear(2, 2)}, TypeError, "ArenaModel"),
    ],
)
def test_call_arguments_are_validated(
    model: ArenaModel, test_images: Batch, change: dict[str, object], error: type[Exception], match: str
) -> None:
    args: dict[str, object] = {
        "model": model,
        "images": test_images[0][:4],
        "labels": test_images[1][:4],
        "eps": 0.1,
        "generator": None,
    }
    args.update(change)
    generator = args.pop("generator")
    with pytest.raises(error, match=match):
        get_attack("pgd", steps=1)(*args.values(), generator=generator)  # type: ignore[arg-type]

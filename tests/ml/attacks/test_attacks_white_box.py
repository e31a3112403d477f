"""White-box family: targeted modes, CW's search over c, DeepFool's minimal perturbations, the L2 budget, and
the registry's description of every attack (what ``GET /api/v1/attacks`` will serve)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import Tensor

from app.ml import ArenaModel
from app.ml.attacks import available_attacks, describe_attacks, get_attack

Batch = tuple[Tensor, Tensor]


@pytest.mark.parametrize(
    ("name", "params", "eps"),
    [
        ("pgd", {"steps": 10}, 0.2),
        ("pgd-l2", {"steps": 10}, 4.0),
        ("mi-fgsm", {"steps": 10}, 0.2),
        ("cw", {"steps": 60, "binary_search_steps": 3, "learning_rate": 0.1, "initial_const": 10.0}, 28.0),
    ],
)
def test_targeted_mode_reaches_the_target(
    name: str, params: dict[str, object], eps: float, model: ArenaModel, test_images: Batch
) -> None:
    images, labels = test_images[0][:32], test_images[1][:32]
    target = (labels + 1) % 10
    result = get_attack(name, **params)(
        model, images, labels, eps, generator=torch.Generator().manual_seed(0), target=target
    )
    assert torch.equal(result.success, result.logits.argmax(1) == target)
    assert float(result.success.float().mean()) >= 0.8


def test_untargeted_attacks_refuse_a_target(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images[0][:2], test_images[1][:2]
    with pytest.raises(ValueError, match="untargeted only"):
        get_attack("deepfool")(model, images, labels, 1.0, target=labels)
    with pytest.raises(ValueError, match="target must be an int64"):
        get_attack("pgd", steps=1)(model, images, labels, 0.1, target=labels.int())
    with pytest.raises(ValueError, match="target labels must lie"):
        get_attack("pgd", steps=1)(model, images, labels, 0.1, target=labels + 10)


def test_l2_budgets_are_validated_in_l2_units(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images[0][:2], test_images[1][:2]
    result = get_attack("pgd-l2", steps=2)(model, images, labels, 3.0)
    assert float(result.l2.max()) <= 3.0
    with pytest.raises(ValueError, match=r"eps must lie in \[0, 1\]"):
        get_attack("pgd", steps=1)(model, images, labels, 3.0)
    with pytest.raises(ValueError, match=r"eps must lie in \[0, 28\]"):
        get_attack("pgd-l2", steps=1)(model, images, labels, 29.0)


def test_cw_search_over_c_beats_a_single_c(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images[0][:32], test_images[1][:32]
    single = get_attack("cw", steps=40, binary_search_steps=1, initial_const=0.1, learning_rate=0.1)
    search = get_attack("cw", steps=40, binary_search_steps=4, initial_const=0.1, learning_rate=0.1)
    one = single(model, images, labels, 28.0)
    many = search(model, images, labels, 28.0)
    assert float(many.success.float().mean()) > float(one.success.float().mean())
    assert float(many.success.float().mean()) >= 0.9


def test_cw_result_is_clipped_to_eps_and_success_remeasured(model: ArenaModel, test_images: Batch) -> None:
    images, labels = test_images[0][:32], test_images[1][:32]
    attack = get_attack("cw", steps=30, binary_search_steps=2, learning_rate=0.1)
    free = attack(model, images, labels, 28.0)
    tight = attack(model, images, labels, 0.1)
    assert bool((tight.l2 <= 0.1).all())  # in float32, like the budget itself
    assert float(tight.success.float().mean()) < float(free.success.float().mean())


def test_deepfool_finds_smaller_perturbations_than_pgd_l2_needs(model: ArenaModel, test_images: Batch) -> None:
    """DeepFool minimises: its median L2 is well below the budget PGD-L2 is given and spends."""
    images, labels = test_images[0][:32], test_images[1][:32]
    deepfool = get_attack("deepfool", steps=30)(model, images, labels, 28.0)
    assert float(deepfool.success.float().mean()) >= 0.95
    pgd = get_attack("pgd-l2", steps=10)(model, images, labels, 2.0, generator=torch.Generator().manual_seed(0))
    assert float(deepfool.l2.median()) < 0.5 * float(pgd.l2.median())


def test_describe_attacks_lists_every_attack_with_defaults_within_ranges() -> None:
    described = describe_attacks()
    assert [d["name"] for d in described] == available_attacks()
    json.dumps(described)  # plain data, ready for the API
    for entry in described:
        assert entry["threat_model"] in {"white-box", "score", "decision", "transfer"}
        assert entry["norm"] in {"linf", "l2", "l0"}
        assert len(entry["explanation"]) > 150 and entry["budget"]
        for param in entry["params"]:
            default = param["default"]
            if default is None or isinstance(default, bool):
                continue
            assert param.get("min", param.get("min_exclusive", default)) <= default <= param.get("max", default)
        get_attack(entry["name"])  # the defaults themselves validate
    black_box = {d["name"] for d in described if d["threat_model"] in ("score", "decision")}
    assert {"square", "nes", "hopskipjump", "genattack", "one-pixel", "evadehc"} == black_box
    assert all(any(p["name"] == "max_queries" for p in d["params"]) for d in described if d["name"] in black_box)

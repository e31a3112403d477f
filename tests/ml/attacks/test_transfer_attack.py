"""The transfer attack and the transfer matrix.

Transfer must be black-box for the target: crafting happens on the surrogate, and the target's only forward
pass is the base class's success check on the final images. The matrix is checked on a tiny n for its
definition (eligible images, white-box diagonal, counts) rather than its values.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from app.ml import ArenaModel, get_attack, load_opponent
from app.ml.attacks import transfer as transfer_module
from app.ml.measure.transfer_matrix import (
    DEFINITION,
    _prefix_length,
    compute_transfer_matrix,
    render_matrix_markdown,
    write_transfer_matrix,
)
from app.ml.packs import DataPack

Batch = tuple[Tensor, Tensor]


@pytest.fixture(scope="module")
def batch(test_images: Batch) -> Batch:
    return test_images[0][:24], test_images[1][:24]


class CountingNet(torch.nn.Module):
    """Wraps a net and counts its forward calls and the images it saw."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.inner = net
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        out: Tensor = self.inner(x)
        return out


def _counted(model: ArenaModel) -> tuple[ArenaModel, CountingNet]:
    pre = model.card["preprocessing"]
    counted = ArenaModel(
        CountingNet(model.net),
        mean=pre["mean"],
        std=pre["std"],
        image_shape=model.image_shape,
        num_classes=model.num_classes,
        name=model.name,
        differentiable=model.differentiable,
    )
    return counted, counted.net  # type: ignore[return-value]


@pytest.mark.parametrize("target_name", ["fashion-cnn", "fashion-forest"])
def test_target_is_only_queried_by_the_success_check(target_name: str, repo_models_dir: Path, batch: Batch) -> None:
    images, labels = batch
    target, counter = _counted(load_opponent(target_name, models_dir=repo_models_dir))
    attack = get_attack("transfer", surrogate="fashion-logreg", steps=5)
    result = attack(target, images, labels, 0.1, generator=torch.Generator().manual_seed(0))
    assert counter.calls == 0, "crafting never asks the target"
    assert result.queries is None
    result.success  # noqa: B018 -- the base class's deferred check
    assert counter.calls == 1  # the base class's check, nothing else
    with torch.no_grad():
        assert torch.equal(result.success, target(result.adversarial).argmax(1) != labels)


def test_images_are_the_surrogates_white_box_images(repo_models_dir: Path, model: ArenaModel, batch: Batch) -> None:
    images, labels = batch
    surrogate = load_opponent("fashion-logreg", models_dir=repo_models_dir)
    gens = [torch.Generator().manual_seed(i) for i in range(len(labels))]
    crafted = get_attack("pgd", steps=5)(surrogate, images, labels, 0.1, generator=gens)
    gens = [torch.Generator().manual_seed(i) for i in range(len(labels))]
    transferred = get_attack("transfer", surrogate="fashion-logreg", steps=5)(
        model, images, labels, 0.1, generator=gens
    )
    assert torch.equal(crafted.adversarial, transferred.adversarial)
    assert torch.all((transferred.adversarial - images).abs() <= torch.tensor(0.1))  # float32 eps, as attacks use


def test_surrogate_is_loaded_once_per_device(model: ArenaModel, batch: Batch) -> None:
    images, labels = batch
    attack = get_attack("transfer", surrogate="fashion-logreg", steps=1)
    attack(model, images[:2], labels[:2], 0.05)
    first = transfer_module.surrogate_model("fashion-logreg", model.device)
    attack(model, images[:2], labels[:2], 0.05)
    assert transfer_module.surrogate_model("fashion-logreg", model.device) is first


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"surrogate": "fashion-forest"}, "not differentiable"),
        ({"surrogate": "nope"}, "unknown surrogate"),
        ({"base": "square"}, "white-box L∞ attack"),
        ({"steps": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_parameters_are_refused(params: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        get_attack("transfer", **params)


def test_prefix_length_gives_every_cell_n_images() -> None:
    correct = {
        "a": torch.tensor([1, 1, 0, 1, 1, 1, 1], dtype=torch.bool),
        "b": torch.tensor([1, 0, 1, 1, 1, 0, 1], dtype=torch.bool),
    }
    # a&b is right at 0, 3, 4, 6: three such images need the first 5.
    assert _prefix_length(correct, ["a"], ["a", "b"], 3) == 5
    with pytest.raises(ValueError, match="fewer than n=5"):
        _prefix_length(correct, ["a"], ["a", "b"], 5)


def test_matrix_follows_its_definition(repo_models_dir: Path, tmp_path: Path, pack: DataPack) -> None:
    names = ["fashion-logreg", "fashion-forest", "fashion-mlp"]
    result = compute_transfer_matrix(
        eps=0.1, n=20, steps=3, models_dir=repo_models_dir, progress=False, opponents=names
    )
    assert result["definition"] == DEFINITION and result["surrogates"] == ["fashion-logreg", "fashion-mlp"]
    assert result["targets"] == names and result["command"].startswith("arena transfer-matrix --eps 0.1 --n 20")
    assert len(result["cells"]) == 2 * 3
    images, labels = pack.tensors("test", n=result["images"])
    models = {name: load_opponent(name, models_dir=repo_models_dir) for name in names}
    with torch.no_grad():
        right = {name: m(images).argmax(1) == labels for name, m in models.items()}
    for cell in result["cells"]:
        assert cell["white_box"] is (cell["surrogate"] == cell["target"])
        assert cell["n"] == int((right[cell["surrogate"]] & right[cell["target"]]).sum()) >= 20
        assert 0 <= cell["fooled"] <= cell["n"] and cell["rate"] == cell["fooled"] / cell["n"]
        assert cell["wilson95"][0] <= cell["rate"] <= cell["wilson95"][1]
    diagonal = {c["surrogate"]: c["rate"] for c in result["cells"] if c["white_box"]}
    assert diagonal["fashion-mlp"] > 0.5  # white-box PGD at eps 0.1 fools the MLP on most images
    json_path, md_path = write_transfer_matrix(result, tmp_path)
    assert json_path.is_file() and md_path.read_text() == render_matrix_markdown(result)
    assert "(white-box)" not in md_path.read_text() and "**" in md_path.read_text()

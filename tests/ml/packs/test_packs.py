"""Data packs read the local idx files, validate them, and explain clearly what is missing or broken."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from app.config import PROJECT_ROOT
from app.ml import DataPackCorrupt, DataPackMissing, UnknownName, available_packs, get_pack
from app.ml.packs import DataPack
from app.ml.packs.fashion import CLASS_NAMES

TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_test_split(folder: Path, images: bytes, labels: bytes, *, gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in zip(TEST_FILES, (images, labels), strict=True):
        if gz:
            (folder / name).write_bytes(gzip.compress(payload))
        else:
            (folder / name.removesuffix(".gz")).write_bytes(payload)


def tiny_split(n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 10


def test_fashion_pack_metadata() -> None:
    pack = get_pack("fashion")
    assert pack.name == "fashion"
    assert pack.class_names == (
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
    assert pack.image_shape == (1, 28, 28)
    assert "fashion" in available_packs()


@pytest.mark.parametrize(("split", "size"), [("train", 60_000), ("test", 10_000)])
def test_real_splits_have_the_published_shape_and_balance(pack: DataPack, split: str, size: int) -> None:
    images, labels = pack.load_split(split)  # type: ignore[arg-type]
    assert images.shape == (size, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (size,) and labels.dtype == np.int64
    # Fashion-MNIST is exactly balanced: a wrong offset or label file would break this.
    assert np.bincount(labels, minlength=10).tolist() == [size // 10] * 10


def test_splits_are_cached_and_read_only(pack: DataPack) -> None:
    images, labels = pack.load_split("test")
    again, _ = get_pack("fashion", pack.data_dir).load_split("test")
    assert again is images
    with pytest.raises(ValueError, match="read-only"):
        images[0, 0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        labels[0] = 1


def test_tensors_are_pixel_space_floats(pack: DataPack) -> None:
    images, labels = pack.load_split("test")
    x, y = pack.tensors("test", n=5)
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32
    assert torch.equal(x[:, 0] * 255, torch.from_numpy(images[:5].astype(np.float32)))
    assert y.tolist() == labels[:5].tolist()
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_missing_data_dir_names_package_and_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataPackMissing) as info:
        get_pack("fashion", missing).load_split("test")
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "ARENA_DATA_DIR" in message
    assert str(missing) in message
    assert "\n" not in message


def test_missing_file_is_named(tmp_path: Path) -> None:
    images, labels = tiny_split()
    write_test_split(tmp_path, idx_bytes(images), idx_bytes(labels))
    (tmp_path / TEST_FILES[1]).unlink()
    with pytest.raises(DataPackMissing, match="t10k-labels-idx1-ubyte.gz is missing"):
        get_pack("fashion", tmp_path).load_split("test")


@pytest.mark.parametrize("gz", [True, False])
def test_small_valid_pack_round_trips(tmp_path: Path, gz: bool) -> None:
    images, labels = tiny_split()
    write_test_split(tmp_path, idx_bytes(images), idx_bytes(labels), gz=gz)
    got_images, got_labels = get_pack("fashion", tmp_path).load_split("test")
    assert np.array_equal(got_images, images)
    assert got_labels.tolist() == labels.tolist()


def _corruptions() -> list[tuple[str, bytes | None, bytes | None, str]]:
    images, labels = tiny_split()
    good_images = idx_bytes(images)
    bad_magic = bytearray(good_images)
    bad_magic[3] = 1
    return [
        ("bad magic", bytes(bad_magic), None, "magic number"),
        ("truncated data", good_images[:-10], None, "header promises"),
        ("trailing bytes", good_images + b"x", None, "header promises"),
        ("wrong image size", idx_bytes(np.zeros((3, 32, 32), np.uint8)), None, r"shaped \(32, 32\)"),
        ("label count", None, idx_bytes(labels[:2]), "3 images but .* 2 labels"),
        ("label range", None, idx_bytes(np.array([0, 1, 10], np.uint8)), "labels outside 0..9"),
        ("empty file", b"", None, "magic number None"),
    ]


@pytest.mark.parametrize(
    ("case", "images", "labels", "match"), _corruptions(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_corrupt_idx_files_raise_clear_errors(
    tmp_path: Path, case: str, images: bytes | None, labels: bytes | None, match: str
) -> None:
    good_images, good_labels = (idx_bytes(a) for a in tiny_split())
    write_test_split(
        tmp_path, images if images is not None else good_images, labels if labels is not None else good_labels
    )
    with pytest.raises(DataPackCorrupt, match=match):
        get_pack("fashion", tmp_path).load_split("test")


def test_file_that_is_not_gzip_is_reported(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / TEST_FILES[0]).write_bytes(b"<html>not found</html>")
    (tmp_path / TEST_FILES[1]).write_bytes(b"<html>not found</html>")
    with pytest.raises(DataPackCorrupt, match="not a readable gzip file") as info:
        get_pack("fashion", tmp_path).load_split("test")
    assert isinstance(info.value, ValueError)


def test_unknown_pack_lists_valid_names() -> None:
    with pytest.raises(UnknownName) as info:
        get_pack("cifar")
    assert isinstance(info.value, KeyError)
    assert str(info.value) == "unknown pack 'cifar'; choose one of: fashion"


def test_unknown_split_is_rejected(pack: DataPack) -> None:
    with pytest.raises(ValueError, match="no split 'validation'"):
        pack.load_split("validation")  # type: ignore[arg-type]


def test_class_names_constant_matches_pack(pack: DataPack) -> None:
    assert pack.class_names == CLASS_NAMES and pack.num_classes == 10


def test_importing_packs_does_not_import_torch() -> None:
    code = "import sys, app.ml.packs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

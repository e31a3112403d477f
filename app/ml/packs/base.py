"""Data packs: a named dataset the game can draw rounds from, read from local files only.

A pack never downloads anything. The arena runs on event laptops and servers with no internet access, so the
data comes from a distribution package (or a folder named by ``ARENA_DATA_DIR``), and a missing folder is
reported with the exact package and setting that fix it instead of a traceback from deep inside a reader.

Importing this module does not import torch (only the tensor helpers do, when called): the web tier reads class
names and images from packs without paying for torch.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")

# idx files (LeCun's MNIST format): two zero bytes, a type code, the number of dimensions, then one big-endian
# uint32 per dimension. 0x08 is unsigned byte, the only type the MNIST-style datasets use.
_IDX_UBYTE = 0x08


class DataPackMissing(Exception):
    """The pack's files are not on this machine; the message says which package or setting provides them."""


class DataPackCorrupt(ValueError):
    """A pack file exists but is not a valid idx file of the expected shape (truncated download, wrong file)."""


@dataclass(frozen=True)
class IdxSplit:
    """File names of one split. The reader also accepts the same name without ``.gz`` (already unpacked)."""

    images: str
    labels: str


@dataclass(frozen=True)
class DataPack:
    """A dataset stored as idx files in one folder, with the facts the game and the model card need.

    The instance is cheap to build; the arrays are read on first use and cached per file path, so every round,
    evaluation and test in one process shares one read-only copy.
    """

    name: str
    title: str
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    data_dir: Path
    splits: tuple[tuple[Split, IdxSplit], ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    licence: str
    homepage: str
    debian_package: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return self.image_shape[0]

    def files(self, split: Split) -> IdxSplit:
        for name, files in self.splits:
            if name == split:
                return files
        raise ValueError(f"pack {self.name!r} has no split {split!r}; it has {[s for s, _ in self.splits]}")

    def load_split(self, split: Split) -> tuple[np.ndarray, np.ndarray]:
        """Images as uint8 (N,H,W) for grayscale or (N,H,W,C) for colour, labels as int64 (N,); both read-only.

        Read-only because the arrays are cached and shared: a caller that normalises in place would otherwise
        corrupt every later round.
        """
        files = self.files(split)
        images_path = self._locate(files.images)
        labels_path = self._locate(files.labels)
        c, h, w = self.image_shape
        item_shape = (h, w) if c == 1 else (h, w, c)
        return _read_idx_pair(images_path, labels_path, item_shape, self.num_classes)

    def tensors(self, split: Split, *, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` images of a split as float32 (N,C,H,W) in [0,1], the pixel space models accept."""
        import torch  # only when called: the web tier imports packs without torch (see the module docstring)

        images, labels = self.load_split(split)
        if n is not None:
            if n < 1:
                raise ValueError(f"n must be at least 1, got {n}")
            images, labels = images[:n], labels[:n]
        return images_to_tensor(images), torch.from_numpy(labels.copy())

    def _locate(self, filename: str) -> Path:
        if not self.data_dir.is_dir():
            raise DataPackMissing(self._missing_message(f"folder {self.data_dir} does not exist"))
        for candidate in (self.data_dir / filename, self.data_dir / filename.removesuffix(".gz")):
            if candidate.is_file():
                return candidate
        raise DataPackMissing(self._missing_message(f"{self.data_dir / filename} is missing"))

    def _missing_message(self, what: str) -> str:
        return (
            f"{self.title} data not found: {what}. Install it with `apt-get install {self.debian_package}` "
            f"or set ARENA_DATA_DIR to a folder holding the {self.title} idx files."
        )


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N,H,W) or (N,H,W,C) -> float32 (N,C,H,W) in [0,1]."""
    import torch  # only when called: the web tier imports packs without torch (see the module docstring)

    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise ValueError(f"expected uint8 images shaped (N,H,W) or (N,H,W,C), got {images.dtype} {images.shape}")
    # astype copies into a writable buffer: torch refuses to wrap the cached read-only arrays safely.
    t = torch.from_numpy(images.astype(np.float32)).div_(255.0)
    return t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2).contiguous()


@lru_cache(maxsize=8)
def _read_idx_pair(
    images_path: Path, labels_path: Path, item_shape: tuple[int, ...], num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    images = _read_idx(images_path, item_shape)
    labels = _read_idx(labels_path, ())
    if len(images) != len(labels):
        raise DataPackCorrupt(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    labels = labels.astype(np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataPackCorrupt(f"{labels_path} has labels outside 0..{num_classes - 1}")
    labels.setflags(write=False)
    logger.info("read %d images from %s", len(images), images_path)
    return images, labels


def _read_idx(path: Path, item_shape: tuple[int, ...]) -> np.ndarray:
    """Parse one idx file and check it has exactly the item shape the pack promises."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataPackCorrupt(f"{path} is not a readable gzip file ({exc}); reinstall the data package") from exc
    ndim = 1 + len(item_shape)
    header_len = 4 + 4 * ndim
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE or raw[3] != ndim:
        magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
        expected = (_IDX_UBYTE << 8) | ndim
        raise DataPackCorrupt(
            f"{path} is not an idx file of unsigned bytes with {ndim} dimensions "
            f"(magic number {magic if magic is None else hex(magic)}, expected {hex(expected)})"
        )
    if len(raw) < header_len:
        raise DataPackCorrupt(f"{path} is truncated inside its header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if dims[1:] != item_shape:
        raise DataPackCorrupt(f"{path} holds items shaped {dims[1:]}, expected {item_shape}")
    expected_len = header_len + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected_len:
        raise DataPackCorrupt(
            f"{path} has {len(raw) - header_len} data bytes, its header promises {expected_len - header_len}"
        )
    # frombuffer over immutable bytes gives a read-only array without copying the 47 MB training set.
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)

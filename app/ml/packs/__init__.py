"""Registry of data packs. One module per dataset; add its factory to ``_PACKS`` to make it playable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.config import get_settings
from app.ml.errors import UnknownName
from app.ml.packs.base import DataPack, DataPackCorrupt, DataPackMissing, Split, images_to_tensor
from app.ml.packs.fashion import fashion_pack

_PACKS: dict[str, Callable[[Path], DataPack]] = {"fashion": fashion_pack}


def available_packs() -> list[str]:
    return sorted(_PACKS)


def get_pack(name: str, data_dir: Path | None = None) -> DataPack:
    """The pack called ``name``, reading from ``data_dir`` (default: the ``ARENA_DATA_DIR`` setting).

    Building a pack does not touch the disk, so this is safe to call at start-up even when the data is absent;
    the first :meth:`DataPack.load_split` reports what is missing.
    """
    try:
        factory = _PACKS[name]
    except KeyError:
        raise UnknownName("pack", name, _PACKS) from None
    return factory(Path(data_dir) if data_dir is not None else get_settings().data_dir)


__all__ = [
    "DataPack",
    "DataPackCorrupt",
    "DataPackMissing",
    "Split",
    "available_packs",
    "get_pack",
    "images_to_tensor",
]

"""Which test images an opponent gets right when clean: the images its rounds are drawn from.

Asking the model about all 10,000 test images costs seconds for a plain net and most of a minute for the slow
defenses (Defense-GAN projects every image; feature squeezing runs the net three times), at every start of every
process that serves them: about 110 s for all opponents on 2 cores. So the answer is looked up in this order:

1. the committed record ``models/<name>.eligible.json``, written by ``arena eligible`` next to the checkpoint;
2. the local cache ``var/cache/eligible/<name>-<key>.npy``, written the first time it had to be computed;
3. the model itself (and the result goes to the cache).

Both stored answers are keyed by :func:`eligibility_key`: the model card (which holds the checkpoint's sha256 and
every defense parameter) less its measurement-only sections, and the test images and labels themselves. A
retrained model, an edited card or another data set misses them, and the answer is computed again; ``arena train``
rewrites the record of what it trained, ``arena eligible`` refreshes any. The record is a
pre-filter, measured on one machine: the round still asks the model about the image it shows.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.config import PROJECT_ROOT
from app.ml.opponents.cards import atomic_write_bytes
from app.ml.opponents.registry import load_opponent
from app.ml.packs import get_pack
from app.ml.service.tensors import to_tensor

logger = logging.getLogger(__name__)

ELIGIBLE_CACHE = PROJECT_ROOT / "var" / "cache" / "eligible"
RECORD_VERSION = 1
BATCH = 1000


# Card sections that only report measurements of the model (arena eval, arena defense-eval, the round attack the
# lab chose): rewriting them changes no prediction, so they stay out of the key.
MEASUREMENT_KEYS = ("robustness_table", "defense_lab", "adaptive_attack")


def eligibility_key(card: Mapping[str, Any], images: np.ndarray, labels: np.ndarray) -> str:
    defining = {key: value for key, value in card.items() if key not in MEASUREMENT_KEYS}
    digest = hashlib.sha256(json.dumps(defining, sort_keys=True, default=str).encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    digest.update(np.ascontiguousarray(labels).tobytes())
    return digest.hexdigest()[:32]


def record_path(models_dir: Path, name: str) -> Path:
    return models_dir / f"{name}.eligible.json"


def cache_path(name: str, key: str) -> Path:
    return ELIGIBLE_CACHE / f"{name}-{key}.npy"


def encode_mask(eligible: np.ndarray, total: int) -> str:
    mask = np.zeros(total, dtype=bool)
    mask[eligible] = True
    return base64.b64encode(np.packbits(mask).tobytes()).decode("ascii")


def decode_mask(text: str, total: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text, validate=True), dtype=np.uint8), count=total)
    return np.flatnonzero(bits).astype(np.int64)


def read_record(models_dir: Path, name: str, key: str, total: int) -> np.ndarray | None:
    """The committed answer, or None (missing, unreadable, or made for another card or data set: then it says so
    and how to refresh it)."""
    path = record_path(models_dir, name)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        logger.warning("%s is unreadable (%s): refresh it with `arena eligible --opponent %s`", path, error, name)
        return None
    if not isinstance(record, dict) or record.get("key") != key or record.get("total") != total:
        logger.warning(
            "%s was made for another model card or test set: computing it instead; refresh it with "
            "`arena eligible --opponent %s`",
            path,
            name,
        )
        return None
    try:
        eligible = decode_mask(str(record["correct"]), total)
    except (KeyError, ValueError) as error:
        logger.warning("%s is damaged (%s): refresh it with `arena eligible --opponent %s`", path, error, name)
        return None
    if len(eligible) != record.get("count"):
        logger.warning("%s does not add up: refresh it with `arena eligible --opponent %s`", path, name)
        return None
    return eligible


def write_record(models_dir: Path, name: str, key: str, eligible: np.ndarray, total: int, device: str) -> Path:
    path = record_path(models_dir, name)
    record = {
        "version": RECORD_VERSION,
        "opponent": name,
        "key": key,
        "what": "test images the opponent classifies correctly when clean (bit i of the mask: test image i)",
        "total": total,
        "count": len(eligible),
        "clean_accuracy": round(len(eligible) / total, 6),
        "measured_on": device,
        "command": f"arena eligible --opponent {name}",
        "correct": encode_mask(eligible, total),
    }
    atomic_write_bytes(path, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    return path


def read_cache(name: str, key: str) -> np.ndarray | None:
    try:
        return np.load(cache_path(name, key), allow_pickle=False)
    except (OSError, ValueError):
        return None


def write_cache(name: str, key: str, eligible: np.ndarray) -> None:
    path = cache_path(name, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with partial.open("wb") as handle:
            np.save(handle, eligible, allow_pickle=False)
        os.replace(partial, path)
    except OSError as error:  # a read-only checkout still works, it just asks the model every time
        logger.info("eligible-image cache not written (%s)", error)


def correctly_classified(
    model: torch.nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    device: torch.device,
    to_tensor: Callable[[np.ndarray, torch.device], torch.Tensor],
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Indices of the images the model classifies correctly, asked in batches of 1,000."""
    predictions = []
    with torch.inference_mode():
        for start in range(0, len(images), BATCH):
            batch = to_tensor(images[start : start + BATCH], device)
            predictions.append(model(batch).argmax(1).cpu().numpy())
            if progress is not None:
                progress(len(predictions[-1]))
    return np.flatnonzero(np.concatenate(predictions) == labels)


def refresh_record(
    name: str,
    *,
    models_dir: Path,
    data_dir: Path | None = None,
    device: str = "cpu",
    threads: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[Path, int, int]:
    """Ask the opponent about every test image and write its committed record: (path, correct, total)."""
    if threads is not None:
        torch.set_num_threads(threads)
    model = load_opponent(name, device=device, models_dir=models_dir)
    images, labels = get_pack(model.pack_name, data_dir).load_split("test")
    key = eligibility_key(model.card, images, labels)
    eligible = correctly_classified(model, images, labels, torch.device(device), to_tensor, progress)
    path = write_record(models_dir, name, key, eligible, len(labels), str(device))
    write_cache(name, key, eligible)
    return path, len(eligible), len(labels)

"""Defenses that wrap a trained opponent without retraining it: feature squeezing (its detector threshold is
calibrated here) and JPEG compression (nothing to calibrate). Each writes the wrapper's card, which pins the
wrapped checkpoint."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from app.ml.defenses.jpeg import JPEGCompression
from app.ml.defenses.squeezing import FeatureSqueezing, calibrate_threshold
from app.ml.measure.evaluation import clean_predictions
from app.ml.model import ArenaModel
from app.ml.opponents import cards
from app.ml.opponents.registry import load_opponent, resolve_device
from app.ml.opponents.specs import OpponentSpec
from app.ml.packs import DataPack, get_pack
from app.ml.training.checkpoints import base_card, provenance
from app.ml.training.options import TrainingOptions

# Clean training images the detector threshold is chosen on (the test set is only used to measure it).
CALIBRATION_SLICE = (50_000, 52_000)


def _wrapped(spec: OpponentSpec, options: TrainingOptions) -> tuple[Path, DataPack, ArenaModel]:
    models_dir = options.output_dir()
    pack = get_pack(spec.pack_name, options.data_dir)
    base = load_opponent(spec.wraps, device=resolve_device(options.device), models_dir=models_dir)
    return models_dir, pack, base


def _wrapper_card(spec: OpponentSpec, pack: DataPack, base: ArenaModel, models_dir: Path, what: str) -> dict[str, Any]:
    """The card of a wrapper of ``base``: the wrapped checkpoint pinned, plus ``what`` the wrapper adds."""
    card = base_card(spec, pack, base.net, models_dir)
    card["checkpoint"] = dict(base.card["checkpoint"])
    card["architecture"]["net"] = f"{base.card['architecture']['net']} (the {spec.wraps} checkpoint) + {what}"
    card["wraps"] = spec.wraps
    return card


def _calibration_section(spec: OpponentSpec, base: ArenaModel, wall: float) -> dict[str, Any]:
    return {
        "command": spec.train_command,
        "calibration_only": True,
        "wall_time_s": round(wall, 1),
        "device": str(base.device),
        **provenance(),
    }


def calibrate_squeezing(spec: OpponentSpec, options: TrainingOptions) -> dict[str, Any]:
    """Choose the feature-squeezing detector's threshold on clean training images for the spec's target FPR,
    measure clean accuracy and the false positive rate on the test set, and write the wrapper's card."""
    models_dir, pack, base = _wrapped(spec, options)
    bits, target_fpr = int(spec.defense_params["bits"]), float(spec.defense_params["target_fpr"])
    started = time.perf_counter()
    train_x, _ = pack.tensors("train")
    lo, hi = CALIBRATION_SLICE
    probe = FeatureSqueezing(base, bits=bits, name=spec.name)
    threshold = calibrate_threshold(probe, train_x[lo:hi].to(base.device), target_fpr)
    model = FeatureSqueezing(base, bits=bits, threshold=threshold, name=spec.name)
    test_x, test_y = pack.tensors("test")
    accuracy = (clean_predictions(model, test_x) == test_y).float().mean().item()
    flagged = torch.cat([model.detect(test_x[i : i + 500].to(base.device)).cpu() for i in range(0, 1000, 500)])
    wall = time.perf_counter() - started
    card = _wrapper_card(spec, pack, base, models_dir, "squeezers")
    card["clean_accuracy"], card["clean_accuracy_n"] = accuracy, len(test_y)
    card["detector"] = {
        "kind": "feature squeezing (Xu et al. 2018), joint detector",
        "bits": bits,
        "squeezers": [f"bit depth {bits}", "median filter 2x2"],
        "score": "max over squeezers of L1(softmax f(x), softmax f(squeeze(x)))",
        "classifies": f"f(bit_depth(x, {bits}))",
        "threshold": threshold,
        "target_fpr": target_fpr,
        "calibrated_on": f"clean training images {lo}..{hi - 1} (n = {hi - lo})",
        "test_fpr": flagged.float().mean().item(),
        "test_fpr_n": len(flagged),
        "test_fpr_subset": "first 1000 clean test images",
    }
    card["training"] = _calibration_section(spec, base, wall)
    cards.write_card(card, models_dir, spec.name)
    return card


def calibrate_jpeg(spec: OpponentSpec, options: TrainingOptions) -> dict[str, Any]:
    """No training and nothing to calibrate: measure the JPEG-wrapped opponent's clean accuracy, write its card."""
    models_dir, pack, base = _wrapped(spec, options)
    quality = int(spec.defense_params["quality"])
    started = time.perf_counter()
    model = JPEGCompression(base, quality=quality, name=spec.name)
    test_x, test_y = pack.tensors("test")
    accuracy = (clean_predictions(model, test_x) == test_y).float().mean().item()
    card = _wrapper_card(spec, pack, base, models_dir, "JPEG")
    card["transform"] = {"kind": "JPEG encode/decode (libjpeg via Pillow)", "quality": quality}
    card["clean_accuracy"], card["clean_accuracy_n"] = accuracy, len(test_y)
    card["training"] = _calibration_section(spec, base, time.perf_counter() - started)
    cards.write_card(card, models_dir, spec.name)
    return card

"""Model cards: the JSON the game reads (``clean_accuracy``, ``staircase.min_eps``) and a Markdown twin for people.

Following RobustBench, every number in a card says how it was measured (attack, parameters, eps, n, subset),
so a figure can be reproduced and a changed figure can be traced to a changed measurement.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from app.ml.opponents.defense_cards import render_defense_lines

CARD_SCHEMA_VERSION = 1


def checkpoint_path(models_dir: Path, name: str) -> Path:
    return models_dir / f"{name}.safetensors"


def card_path(models_dir: Path, name: str) -> Path:
    return models_dir / f"{name}.json"


def markdown_path(models_dir: Path, name: str) -> Path:
    return models_dir / f"{name}.md"


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write through a temporary file and ``os.replace`` so an interrupt never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_card(path: Path) -> dict[str, Any]:
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"model card {path} is not readable JSON: {exc}") from exc
    if not isinstance(card, dict):
        raise ValueError(f"model card {path} must hold a JSON object")
    return card


def write_card(card: dict[str, Any], models_dir: Path, name: str) -> None:
    """Write ``<name>.json`` and the ``<name>.md`` rendered from it, each atomically."""
    text = json.dumps(card, indent=2, ensure_ascii=False) + "\n"
    atomic_write_bytes(card_path(models_dir, name), text.encode("utf-8"))
    atomic_write_bytes(markdown_path(models_dir, name), render_markdown(card).encode("utf-8"))


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def parameters_text(params: dict[str, Any]) -> str:
    """An attack's parameters as a table cell: ``steps=40, step_size=2.5*eps/steps``, or ``-`` for none."""
    return ", ".join(f"{key}={_param(key, value)}" for key, value in params.items()) or "-"


def _param(key: str, value: Any) -> str:
    if key == "step_size" and value is None:
        return "2.5*eps/steps"
    return str(value)


def _differentiable_lines(card: dict[str, Any]) -> list[str]:
    if "differentiable" not in card:
        return []
    line = "- Differentiable: " + ("yes (white-box attacks apply)" if card["differentiable"] else "**no**")
    notes = card.get("notes") or ""
    return [line + (f". {notes}" if notes else ""), ""]


def _estimator_lines(arch: dict[str, Any]) -> list[str]:
    if "estimator" not in arch:
        return []
    lines = [f"- Estimator: `{arch['estimator']}`, stored as arrays (safetensors) and evaluated by `{arch['net']}`"]
    if "trees" in arch:
        lines.append(
            f"- {arch['trees']} trees, {arch['nodes']:,} nodes, {arch['leaves']:,} leaves, "
            f"max depth {arch['max_depth']}"
        )
    return lines


def _training_lines(train: dict[str, Any]) -> list[str]:
    if train.get("calibration_only"):
        return ["- No training: the wrapped checkpoint is used as it is; only the detector threshold is calibrated"]
    if "estimator" in train:
        params = ", ".join(f"{k}={v}" for k, v in train["hyperparameters"].items())
        return [
            f"- Seed {train['seed']}, {train['library']}, `{train['estimator']}`",
            f"- Hyperparameters: {params}",
            f"- Input: {train['input']}",
        ]
    return [
        f"- Seed {train['seed']}, {train['epochs']} epochs, batch size {train['batch_size']}, "
        f"{train['optimizer']}, {train['schedule']}",
        f"- Augmentation: {train['augmentation']}",
    ]


def _equivalence_lines(card: dict[str, Any]) -> list[str]:
    eq = card.get("equivalence")
    if not eq:
        return []
    return [
        "## Equivalence with scikit-learn",
        "",
        f"On the {eq['subset']}: {eq['rule']}: largest difference {eq['max_abs_diff']:.1e} "
        f"(tolerance {eq['tolerance']:.0e}), same predicted class on {_pct(eq['argmax_agreement'])}.",
        "",
    ]


def _clean_accuracy_line(card: dict[str, Any]) -> str:
    if "clean_accuracy" not in card:  # a defended opponent's card, written before its first measurement
        return "Clean accuracy: not measured yet (the run that measures it has not finished)."
    subset = card.get("clean_accuracy_subset", f"all {card['clean_accuracy_n']:,} test images")
    return f"Clean accuracy on {subset}: **{_pct(card['clean_accuracy'])}**."


def render_markdown(card: dict[str, Any]) -> str:
    """The human-readable card. Generated, never edited by hand, so it cannot drift from the JSON."""
    data, arch, train = card["data"], card["architecture"], card["training"]
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"*Generated from `{card['name']}.json` by `app/ml/opponents/cards.py`; do not edit by hand.*",
        "",
        f"{card['description']}",
        "",
        *_differentiable_lines(card),
        "## Data",
        "",
        f"- Dataset: {data['dataset']} (pack `{card['pack']}`), licence {data['licence']}, {data['homepage']}",
        f"- Train {data['train_size']:,} images / test {data['test_size']:,} images, "
        f"{data['image_shape'][1]}x{data['image_shape'][2]}, {data['image_shape'][0]} channel(s)",
        f"- Read from `{data['source']}` (Debian package `{data['debian_package']}`)",
        f"- Classes: {', '.join(data['class_names'])}",
        "",
        "## Architecture",
        "",
        f"- `{arch['net']}`: {arch['layers']}",
        f"- Parameters: {arch['parameters']:,}",
        *_estimator_lines(arch),
        f"- Input: pixels in [{card['preprocessing']['bounds'][0]}, {card['preprocessing']['bounds'][1]}], "
        f"normalised inside the model with mean {card['preprocessing']['mean']} and std "
        f"{card['preprocessing']['std']}",
        "",
        "## Training",
        "",
        f"- Command: `{train['command']}`",
        *_training_lines(train),
        f"- Wall time {train['wall_time_s']:.0f} s on {train['device']} ({train['threads']} threads, "
        f"{train['machine']}), torch {train['torch_version']}",
        "",
        *_equivalence_lines(card),
        "## Accuracy",
        "",
        _clean_accuracy_line(card),
        "",
    ]
    defended = {"detector", "transform", "generator", "defense_lab", "adaptive_attack", "certified"} & card.keys()
    if defended or {"adversarial_training", "distillation", "ibp_training"} & card.get("training", {}).keys():
        lines += render_defense_lines(card)
    if "robustness" in card:
        lines += _robustness_lines(card["robustness"], card["staircase"])
    lines += ["", *render_robustness_table(card["robustness_table"])] if "robustness_table" in card else []
    lines += ["", *checkpoint_lines(card)]
    return "\n".join(lines)


def checkpoint_lines(card: dict[str, Any]) -> list[str]:
    """Every card's closing section: the checkpoint file and the sha256 that pins it."""
    return [
        "## Checkpoint",
        "",
        f"`{card['checkpoint']['file']}` (safetensors), sha256 `{card['checkpoint']['sha256']}`",
        "",
    ]


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table as lines: the header, its rule, then one line a row."""
    return [_table_row(header), "|" + "---|" * len(header), *map(_table_row, rows)]


def _table_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _robustness_lines(rob: dict[str, Any], stair: dict[str, Any]) -> list[str]:
    return [
        f"Under attack, on the {rob['subset']} (n = {rob['n']}; clean accuracy on them "
        f"{_pct(rob['clean_accuracy'])}); {rob['random_start_seeding']}:",
        "",
        *markdown_table(
            ["attack", "parameters", "eps", "eps x 255", "accuracy"],
            [
                [
                    row["attack"],
                    parameters_text(row["params"]),
                    f"{row['eps']:g}",
                    f"{row['eps'] * 255:.1f}",
                    _pct(row["accuracy"]),
                ]
                for row in rob["results"]
            ],
        ),
        "",
        "## Staircase start",
        "",
        f"`min_eps` = **{stair['min_eps']:.4f}** ({stair['min_eps_255']}/255). Rule: {stair['rule']}",
        "",
        *markdown_table(
            ["eps", "eps x 255", "fooled", "n"],
            [
                [f"{row['eps']:.4f}", f"{row['eps'] * 255:.0f}", _pct(row["fooled_rate"]), str(row["n"])]
                for row in stair["measured"]
            ],
        ),
    ]


def render_robustness_table(table: dict[str, Any]) -> list[str]:
    """The ``robustness_table`` that ``arena eval`` writes, as Markdown lines (a section of the card)."""
    return [
        "## Robustness table",
        "",
        f"`{table['command']}`, measured {table['measured']} on the {table['subset']} (n = {table['n']}; clean "
        f"accuracy {_pct(table['clean_accuracy'])}); {table['seeding']}. Success rate: {table['success_rate_means']}. "
        f"Accuracy: {table['accuracy_means']}.",
        "",
        *markdown_table(
            ["attack", "threat", "parameters", "eps", "eps x 255", "n", "accuracy", "success rate"],
            [_robustness_table_row(row) for row in table["rows"]],
        ),
    ]


def _robustness_table_row(row: dict[str, Any]) -> list[str]:
    eps = row["eps"]
    cells = [row["attack"], row["threat_model"], parameters_text(row["params"]), f"{eps:g}", f"{eps * 255:.1f}"]
    if row.get("skipped"):
        return [*cells, str(row["n"]), f"skipped: {row['skipped']}", "–"]
    return [*cells, str(row["n"]), _pct(row["accuracy"]), _pct(row["success_rate"])]

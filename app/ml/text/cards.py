"""Model cards of the text opponents: ``models/<name>.json`` and the Markdown twin rendered from it.

Same files and habits as the image cards (:mod:`app.ml.opponents.cards`): every figure says how it was measured
(attack, parameters, budget, n), so it can be reproduced.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from app.ml.opponents.cards import CARD_SCHEMA_VERSION, atomic_write_bytes, card_path, markdown_path
from app.ml.packs.text.definitions import TextPack
from app.ml.packs.text.wordnet import DEBIAN_PACKAGE, LICENCE, WORDNET_DIR

DESCRIPTIONS = {
    "tfidf": "TF-IDF over the words of the definition and a multinomial logistic regression (scikit-learn): the "
    "bag-of-words baseline, blind to word order and to words it never saw.",
    "minilm": "A linear head on frozen all-MiniLM-L6-v2 sentence embeddings: a small pretrained transformer that "
    "knows what unseen words and synonyms mean.",
}


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{os.cpu_count()} CPU cores, {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return f"{os.cpu_count()} CPU cores, {model}"


def new_card(name: str, kind: str, pack: TextPack) -> dict[str, Any]:
    return {
        "schema_version": CARD_SCHEMA_VERSION,
        "name": name,
        "pack": pack.name,
        "modality": "text",
        "kind": kind,
        "description": DESCRIPTIONS[kind],
        "differentiable": False,
        "data": {
            "dataset": "WordNet 3.0 noun definitions (pack `definitions`)",
            "licence": LICENCE,
            "debian_package": DEBIAN_PACKAGE,
            "source": str(WORDNET_DIR),
            "data_card": "docs/data/definitions.md",
            "split_seed": pack.seed,
            "train_size": len(pack.train),
            "test_size": len(pack.test),
            "class_names": list(pack.class_names),
        },
    }


def write_card(card: dict[str, Any], models_dir: Path) -> None:
    name = card["name"]
    text = json.dumps(card, indent=2, ensure_ascii=False) + "\n"
    atomic_write_bytes(card_path(models_dir, name), text.encode("utf-8"))
    atomic_write_bytes(markdown_path(models_dir, name), render_markdown(card).encode("utf-8"))


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def render_markdown(card: dict[str, Any]) -> str:
    data, arch, train = card["data"], card["architecture"], card["training"]
    eq, clean = card["equivalence"], card["clean_accuracy"]
    hyper = ", ".join(f"{k}={v}" for k, v in sorted(train["hyperparameters"].items()))
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"*Generated from `{card['name']}.json` by `app/ml/text/cards.py`; do not edit by hand.*",
        "",
        card["description"],
        "",
        "- Differentiable: no (word-level attacks query it as a black box; there is no gradient in word space).",
        "",
        "## Data",
        "",
        f"- Dataset: {data['dataset']}, licence {data['licence']}",
        f"- Read from `{data['source']}` (Debian package `{data['debian_package']}`); data card `{data['data_card']}`",
        f"- Train {data['train_size']:,} definitions / test {data['test_size']:,}, split by synset with seed "
        f"{data['split_seed']}",
        f"- Classes: {', '.join(data['class_names'])}",
        "",
        "## Architecture",
        "",
        f"- {arch['model']}",
        f"- Trained parameters: {arch['parameters']:,}"
        + (f" (frozen encoder: {arch['encoder_parameters']:,})" if "encoder_parameters" in arch else ""),
        f"- Stored as arrays (safetensors), evaluated at play time by `{arch['evaluator']}`",
        "",
        "## Training",
        "",
        f"- Command: `{train['command']}`",
        f"- Seed {train['seed']}, {train['library']}",
        f"- Hyperparameters: {hyper}",
        f"- Wall time {train['wall_time_s']} s ({train['threads']} thread, {train['machine']})",
        "",
        "## Equivalence with scikit-learn",
        "",
        f"On the first {eq['n']} test texts our evaluator's probabilities differ from scikit-learn's predict_proba "
        f"by at most {eq['max_abs_diff']:.1e} (tolerance {eq['tolerance']:.0e}).",
        "",
        "## Accuracy",
        "",
        f"Clean accuracy on all {clean['n']:,} test definitions: **{pct(clean['accuracy'])}** (chance "
        f"{pct(1 / len(data['class_names']))}).",
        "",
    ]
    if "attacks" in card:
        lines += attack_lines(card["attacks"])
    lines += [
        "## Checkpoint",
        "",
        f"`{card['checkpoint']['file']}` (safetensors), sha256 `{card['checkpoint']['sha256']}`",
        "",
    ]
    return "\n".join(lines)


def attack_lines(block: dict[str, Any]) -> list[str]:
    lines = [
        f"Under attack, on the first {block['n']} test definitions (clean accuracy on them "
        f"{pct(block['clean_accuracy'])}); {block['command']}:",
        "",
        "| attack | budget (share of words) | similarity floor | accuracy | success on correct | words changed "
        "| similarity | queries (mean) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in block["rows"]:
        lines.append(
            f"| {row['attack']} | {row['budget']:.0%} | {row['similarity_floor']:.2f} | {pct(row['accuracy'])} "
            f"| {pct(row['success_rate'])} | {pct(row['words_changed'])} | {row['similarity']:.3f} "
            f"| {row['queries']:.1f} |"
        )
    return lines + ["", *block.get("notes", []), ""]

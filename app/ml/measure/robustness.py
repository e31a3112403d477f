"""``arena eval``: measure an opponent's clean accuracy and each attack at each eps, and write the table into
its model card (``robustness_table`` in ``models/<name>.json`` and a section of its ``.md``).

Every row says how it was measured (attack, parameters, eps, n, subset, seeding), as RobustBench asks. White-box
attacks need the opponent's gradients; for an opponent whose card says ``"differentiable": false`` they are
skipped, and the table says so instead of reporting a number. Every other key of the card (the checkpoint's
sha256 included) is left exactly as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from app.config import get_settings
from app.ml.attacks import get_attack
from app.ml.measure.evaluation import EVAL_BATCH, clean_predictions, per_image_generators, progress_bar
from app.ml.model import ArenaModel
from app.ml.opponents import cards
from app.ml.opponents.registry import load_opponent
from app.ml.packs import get_pack

logger = logging.getLogger(__name__)

DEFAULT_EPS: tuple[float, ...] = (0.05, 0.1, 0.2)
DEFAULT_ATTACKS = "fgsm,pgd:steps=20,advgan,square:max_queries=1000"
BLACK_BOX = ("score", "decision")


def parse_attacks(spec: str) -> list[tuple[str, dict[str, Any]]]:
    """``"fgsm,pgd:steps=20:early_stop=true"`` -> ``[("fgsm", {}), ("pgd", {"steps": 20, "early_stop": True})]``.

    Values are read as int, then float, then true/false/none, else kept as text; the attack's own parameter
    model validates them (unknown names and bad values raise with the valid choices).
    """
    out: list[tuple[str, dict[str, Any]]] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, *pairs = item.split(":")
        params: dict[str, Any] = {}
        for pair in pairs:
            key, sep, raw = pair.partition("=")
            if not sep or not key:
                raise ValueError(f"attack parameter {pair!r} in {item!r} must look like key=value")
            params[key.strip()] = _value(raw.strip())
        get_attack(name.strip(), **params)  # validate before any work starts
        out.append((name.strip(), params))
    if not out:
        raise ValueError("no attacks given; e.g. --attacks fgsm,pgd:steps=20")
    return out


def _value(raw: str) -> Any:
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    return raw


def is_differentiable(model: ArenaModel) -> bool:
    """False when the model or its card says ``differentiable: false``; a model or card without the flag counts
    as differentiable."""
    return bool(getattr(model, "differentiable", True)) and bool(model.card.get("differentiable", True))


def robustness_table(
    model: ArenaModel,
    images: Tensor,
    labels: Tensor,
    *,
    attacks: Sequence[tuple[str, dict[str, Any]]],
    eps_list: Sequence[float] = DEFAULT_EPS,
    seed: int = 0,
    progress: bool = False,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Clean accuracy and, for each attack and eps, accuracy under attack and success rate on ``images``.

    Success rate: the share of the images the model classifies correctly when clean that the attack fools.
    Accuracy: the share of all n images still classified correctly after the attack.
    """
    n = len(labels)
    clean_ok = clean_predictions(model, images) == labels
    n_right = int(clean_ok.sum())
    differentiable = is_differentiable(model)
    rows: list[dict[str, Any]] = []
    with progress_bar(progress) as bar:
        for name, params in attacks:
            attack = get_attack(name, **params)
            for eps in eps_list:
                row: dict[str, Any] = {
                    "attack": name,
                    "threat_model": attack.threat_model,
                    "params": attack.params.model_dump(),
                    "eps": eps,
                    "n": n,
                }
                if attack.threat_model == "white-box" and not differentiable:
                    row.update(
                        accuracy=None, success_rate=None, skipped="white-box attack; the model is not differentiable"
                    )
                    rows.append(row)
                    continue
                task = bar.add_task(f"{name} eps={eps:g}", total=n)
                fooled_parts, queries = [], []
                for start in range(0, n, EVAL_BATCH):
                    sl = slice(start, min(start + EVAL_BATCH, n))
                    result = attack(
                        model,
                        images[sl].to(model.device),
                        labels[sl].to(model.device),
                        eps,
                        generator=per_image_generators(range(sl.start, sl.stop), seed),
                    )
                    # The base class measured success on the returned images; "fooled" here is the untargeted one.
                    fooled_parts.append(result.success.cpu())
                    if result.queries is not None:
                        queries.append(result.queries.cpu())
                    bar.advance(task, sl.stop - sl.start)
                fooled = torch.cat(fooled_parts) & clean_ok
                row.update(
                    accuracy=round(int((clean_ok & ~fooled).sum()) / n, 4),
                    success_rate=round(int(fooled.sum()) / max(n_right, 1), 4),
                    skipped=None,
                )
                if queries:
                    row["median_queries"] = float(torch.cat(queries).float().median())
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    return {
        "split": "test",
        "n": n,
        "subset": f"first {n} test images",
        "seed": seed,
        "seeding": f"random draws seeded per image with seed + test index (seed {seed})",
        "clean_accuracy": round(n_right / n, 4),
        "success_rate_means": "share of the images classified correctly when clean that the attack fools",
        "accuracy_means": "share of all n images still classified correctly under the attack",
        "rows": rows,
    }


def evaluate_and_record(
    name: str,
    *,
    n: int = 1000,
    eps_list: Sequence[float] = DEFAULT_EPS,
    attacks: str = DEFAULT_ATTACKS,
    seed: int = 0,
    models_dir: Path | None = None,
    data_dir: Path | None = None,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Measure ``name`` and write ``robustness_table`` into its card (JSON and Markdown); returns the table."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not eps_list or any(e < 0 for e in eps_list):
        raise ValueError(f"eps values must be >= 0, got {list(eps_list)}")
    parsed = parse_attacks(attacks)
    models_dir = Path(models_dir) if models_dir is not None else get_settings().models_dir
    model = load_opponent(name, models_dir=models_dir)
    images, labels = get_pack(model.pack_name, data_dir).tensors("test", n=n)
    table = robustness_table(model, images, labels, attacks=parsed, eps_list=eps_list, seed=seed, progress=progress)
    table["measured"] = datetime.now(UTC).date().isoformat()
    table["torch_threads"] = torch.get_num_threads()
    table["command"] = command or (
        f"arena eval --model {name} --n {n} --eps {','.join(f'{e:g}' for e in eps_list)} --attacks {attacks}"
    )
    # Re-read the card right before writing, so that nothing else in it changes.
    card = cards.read_card(cards.card_path(models_dir, name))
    card["robustness_table"] = table
    cards.write_card(card, models_dir, name)
    logger.info("wrote the robustness table of %s (%d rows)", name, len(table["rows"]))
    return table


def format_table(table: dict[str, Any]) -> str:
    """The table as Markdown, as the card shows it."""
    return "\n".join(cards.render_robustness_table(table))

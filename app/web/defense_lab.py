"""``/lab/defenses``: what each defended opponent buys, honestly measured (issue #8).

The page reads the model cards (``models/<name>.json``) that ``arena train`` and ``arena defense-eval`` write; no
torch here. Every number on it comes with its n and the command that reproduces it; an opponent whose card is
missing is listed with the command that makes it, and the defenses not built yet are listed as such.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app import messages
from app.deps import CookiePlayer, SettingsDep
from app.errors import NotFound
from app.stats.defense_curves import Curve, curves_from_rows
from app.stats.plots import defenses as defense_plots
from app.stats.plots.figure import CHART_FORMATS
from app.web.routes import render

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class LabOpponent:
    label: str
    name: str
    defense: str
    make: str  # the command that makes its card


LAB_OPPONENTS: tuple[LabOpponent, ...] = (
    LabOpponent("Standard", "fashion-cnn", "none", "arena train --pack fashion"),
    LabOpponent(
        "Robust",
        "fashion-robust",
        "PGD adversarial training at eps 0.1 (Madry et al. 2018)",
        "arena train --opponent fashion-robust && arena defense-eval --opponent fashion-robust",
    ),
    LabOpponent(
        "Distilled",
        "fashion-distilled",
        "defensive distillation at T = 100 (Papernot et al. 2016)",
        "arena train --opponent fashion-distilled && arena defense-eval --opponent fashion-distilled",
    ),
    LabOpponent(
        "Squeezed",
        "fashion-squeezed",
        "feature squeezing with its detector (Xu et al. 2018)",
        "arena train --opponent fashion-squeezed && arena defense-eval --opponent fashion-squeezed",
    ),
    LabOpponent(
        "JPEG",
        "fashion-jpeg",
        "JPEG compression at quality 75 (input transform; Guo et al. 2018)",
        "arena train --opponent fashion-jpeg && arena defense-eval --opponent fashion-jpeg",
    ),
    LabOpponent(
        "MagNet",
        "fashion-magnet",
        "MagNet: autoencoder detector + reformer (Meng & Chen 2017)",
        "arena train --opponent fashion-magnet && arena defense-eval --opponent fashion-magnet",
    ),
    LabOpponent(
        "Certified",
        "fashion-certified",
        "certified training by interval bound propagation at eps 0.1 (Gowal et al. 2018)",
        "arena train --opponent fashion-certified && arena defense-eval --opponent fashion-certified",
    ),
    LabOpponent(
        "Defense-GAN",
        "fashion-defgan",
        "projection onto a GAN generator's range before classifying (Defense-GAN; Samangouei et al. 2018)",
        "arena train --opponent fashion-defgan && arena defense-eval --opponent fashion-defgan",
    ),
)
NOT_BUILT: tuple[str, ...] = ()


def _standard_rows(card: dict[str, Any]) -> list[dict[str, Any]]:
    """An undefended opponent's rows come from the attack table its training measured."""
    rob = card.get("robustness") or {}
    command = card.get("training", {}).get("command", "")
    return [
        {
            "id": f"{r['attack']}-{r['eps']:g}",
            "role": "plain (no defense to adapt to)",
            "attack": r["attack"],
            "params": r["params"],
            "eps": r["eps"],
            "n": rob.get("n"),
            "accuracy": r["accuracy"],
            "command": command,
        }
        for r in rob.get("results", [])
    ]


def load_lab(models_dir: Path) -> list[dict[str, Any]]:
    """One entry per lab opponent: its card's figures, or why they are missing."""
    out = []
    for opp in LAB_OPPONENTS:
        path = Path(models_dir) / f"{opp.name}.json"
        entry: dict[str, Any] = {"opponent": opp, "card": None, "rows": [], "problem": None}
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            entry["problem"] = f"{path.name} does not exist yet: make it with `{opp.make}`."
            out.append(entry)
            continue
        except (OSError, ValueError) as error:
            entry["problem"] = f"{path.name} could not be read ({error}): make it again with `{opp.make}`."
            out.append(entry)
            continue
        lab = card.get("defense_lab")
        if lab:
            rows = [{"id": row_id, **row} for row_id, row in lab["rows"].items()]
        elif opp.name == "fashion-cnn":
            rows = _standard_rows(card)
        else:
            rows = []
            entry["problem"] = f"not measured yet: run `arena defense-eval --opponent {opp.name}`."
        entry.update(card=card, rows=sorted(rows, key=lambda r: (r["eps"] if r["eps"] < 1 else 99, r["role"])))
        entry["curves"] = _curves(card, entry["rows"])
        out.append(entry)
    return out


def _curves(card: dict[str, Any], rows: list[dict[str, Any]]) -> list[Curve]:
    """Accuracy-vs-eps curves from the rows, anchored at the clean accuracy measured on the same test images."""
    lab = card.get("defense_lab") or {}
    if lab:
        return curves_from_rows(rows, lab.get("clean_accuracy"), lab.get("n"), lab.get("command", ""))
    rob = card.get("robustness") or {}
    return curves_from_rows(rows, rob.get("clean_accuracy"), rob.get("n"), card.get("training", {}).get("command", ""))


@router.get("/lab/defenses", name="lab_defenses")
async def defenses_page(request: Request, player: CookiePlayer, settings: SettingsDep) -> Response:
    context = {"player": player, "entries": load_lab(settings.models_dir), "not_built": NOT_BUILT}
    return render(request, "pages/defense_lab.html", context)


@router.get("/lab/defenses/{name}/curves.{fmt}", name="lab_defense_curves")
async def defense_curves(name: str, fmt: str, settings: SettingsDep) -> Response:
    """One opponent's accuracy-vs-eps chart (naive dashed, adaptive solid) as PNG or SVG."""
    if fmt not in CHART_FORMATS:
        raise NotFound(messages.CHART_UNKNOWN)
    entry = next((e for e in load_lab(settings.models_dir) if e["opponent"].name == name), None)
    if entry is None or not entry.get("curves"):
        raise NotFound(f"no accuracy-vs-eps curves for {name!r}: measure them with `{lab_command(name)}`")
    opp = entry["opponent"]
    title = f"{opp.label} ({opp.name}): accuracy vs L∞ budget, 95% Wilson intervals"
    data = await asyncio.to_thread(defense_plots.defense_curves_chart, entry["curves"], fmt, title=title)
    headers = {"Content-Disposition": f'inline; filename="{name}-curves.{fmt}"', "Cache-Control": "no-store"}
    return Response(data, media_type=CHART_FORMATS[fmt], headers=headers)


def lab_command(name: str) -> str:
    return "arena train --pack fashion" if name == "fashion-cnn" else f"arena defense-eval --opponent {name}"

"""The lab: pages that show what the experiments measured, read from the JSON the measuring commands write.

``/lab/transfer`` shows the transfer matrix (``arena transfer-matrix`` writes ``models/transfer-matrix.json``).
No torch here: the page reads the JSON, and computes each cell's Wilson 95% interval from its counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.deps import CookiePlayer, SettingsDep
from app.stats.intervals import wilson_interval
from app.web.defense_lab import router as defense_lab_router
from app.web.routes import render
from app.web.shown_score import SHOWN_SCORE

router = APIRouter(include_in_schema=False, dependencies=SHOWN_SCORE)
router.include_router(defense_lab_router)  # /lab/defenses (app/web/defense_lab.py)

TRANSFER_MATRIX_FILE = "transfer-matrix.json"
TRANSFER_MATRIX_COMMAND = "arena transfer-matrix --eps 0.1 --n 500 --attack pgd"


def load_transfer_matrix(models_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The matrix as the template needs it, or None and the reason it could not be shown."""
    path = Path(models_dir) / TRANSFER_MATRIX_FILE
    if not path.is_file():
        return None, f"{path} does not exist yet."
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cells = {(c["surrogate"], c["target"]): c for c in data["cells"]}
        rows = []
        for s in data["surrogates"]:
            row = []
            for t in data["targets"]:
                c = cells[(s, t)]
                low, high = wilson_interval(int(c["fooled"]), int(c["n"]))
                row.append({**c, "low": low, "high": high})
            rows.append({"surrogate": s, "cells": row})
        columns = [{"name": t, **data["opponents"][t]} for t in data["targets"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return None, f"{path} could not be read ({error}); make it again."
    return {**data, "rows": rows, "columns": columns}, None


@router.get("/lab/transfer", name="lab_transfer")
async def transfer_page(request: Request, player: CookiePlayer, settings: SettingsDep) -> Response:
    matrix, problem = load_transfer_matrix(settings.models_dir)
    context = {"player": player, "matrix": matrix, "problem": problem, "default_command": TRANSFER_MATRIX_COMMAND}
    return render(request, "pages/transfer.html", context)

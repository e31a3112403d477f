"""Accuracy against the budget for each defended opponent, from the rows its card holds (issue #8's lab curves).

A curve is every L∞ row of one opponent that shares a role, an attack and its parameters (``arena defense-eval``
measures each at several eps), plus the clean accuracy on the same test images at eps 0. Every point keeps its
n and a 95% Wilson interval, so the chart shows how far apart two curves really are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.stats.intervals import wilson_interval

# Rows with eps at or above this are L2 budgets (CW-L2 has no cap): they have no place on an L∞ axis.
LINF_LIMIT = 1.0


@dataclass(frozen=True)
class CurvePoint:
    eps: float
    accuracy: float
    n: int
    interval: tuple[float, float]
    command: str


@dataclass(frozen=True)
class Curve:
    label: str
    role: str
    points: tuple[CurvePoint, ...]


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _point(eps: float, accuracy: float, n: int, command: str) -> CurvePoint:
    return CurvePoint(eps, accuracy, n, wilson_interval(round(accuracy * n), n), command)


def curves_from_rows(
    rows: Sequence[Mapping[str, Any]], clean_accuracy: float | None, clean_n: int | None, clean_command: str = ""
) -> list[Curve]:
    """Group L∞ rows by (role, attack, parameters) into curves of two or more eps values, each starting at eps 0
    with the clean accuracy (when it was measured on the same n images)."""
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        if float(row["eps"]) >= LINF_LIMIT or not row.get("n"):
            continue
        key = (str(row["role"]), str(row["attack"]), json.dumps(row.get("params") or {}, sort_keys=True))
        groups.setdefault(key, []).append(row)
    curves = []
    for (role, attack, params_json), members in groups.items():
        if len({float(r["eps"]) for r in members}) < 2:
            continue
        points = [
            _point(float(r["eps"]), float(r["accuracy"]), int(r["n"]), str(r.get("command", ""))) for r in members
        ]
        n = int(members[0]["n"])
        if clean_accuracy is not None and clean_n == n:
            points.append(_point(0.0, clean_accuracy, n, clean_command))
        params = json.loads(params_json)
        label = f"{attack} ({_params_text(params)}), {role}" if params else f"{attack}, {role}"
        curves.append(Curve(label, role, tuple(sorted(points, key=lambda p: p.eps))))
    return sorted(curves, key=lambda c: (c.role != "naive", c.label))

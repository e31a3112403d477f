"""Fool it by hand (issue #21): the rules of a painting, plain Python and numpy, no HTTP, no database.

A player gets a test image the opponent classifies correctly and edits it with one tool:

* the **brush** lightens (amount > 0) or darkens (amount < 0) the pixels it passes over, each pixel staying within
  ``budget`` grey levels of the original (an L∞ budget) and within 0..255;
* the **pencil** sets the pixels it passes over to one grey value; at most ``budget`` pixels may differ from the
  original (an L0 budget). A stroke that would pass it is refused whole.

The server never takes the client's pixels: the painted image is always the clean image with the accepted strokes
replayed in order (:func:`replay`), so the budget holds whatever the browser sends. The round is won when the
opponent's answer on the painted pixels changes. Points reward the smallest change: see :func:`points`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app import messages
from app.errors import Conflict, Invalid

TOOLS = ("brush", "pencil")
NORM_OF_TOOL = {"brush": "linf", "pencil": "l0"}
DEFAULT_BUDGET = {"brush": 32, "pencil": 40}  # 32 grey levels (eps 0.125); 40 of 784 pixels
BUDGET_RANGE = {"brush": (1, 64), "pencil": (1, 100)}
MAX_POINTS = 400  # per stroke: a drag across a 28x28 image and back, many times over
MAX_STROKES = 500


@dataclass(frozen=True)
class Stroke:
    """One accepted stroke: its tool, the pixels [x, y] it passes over (in order, repeats dropped), and the
    brush's amount or the pencil's value."""

    tool: str
    points: tuple[tuple[int, int], ...]
    amount: int = 0
    value: int = 0

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"tool": self.tool, "points": [list(point) for point in self.points]}
        if self.tool == "brush":
            body["amount"] = self.amount
        else:
            body["value"] = self.value
        return body


def check_tool(tool: str, budget: int | None) -> tuple[str, int]:
    """The tool and its budget (the default when None), or Invalid."""
    if tool not in TOOLS:
        raise Invalid(messages.PAINT_TOOL_INVALID)
    chosen = DEFAULT_BUDGET[tool] if budget is None else budget
    low, high = BUDGET_RANGE[tool]
    if isinstance(chosen, bool) or not isinstance(chosen, int) or not low <= chosen <= high:
        raise Invalid(messages.PAINT_TOOL_INVALID)
    return tool, chosen


def whole(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def parse_stroke(data: Any, *, tool: str, shape: tuple[int, ...]) -> Stroke:
    """A stroke as sent (JSON), checked against the painting's tool and the image's size; Invalid otherwise."""
    invalid = Invalid(messages.PAINT_STROKE_INVALID.format(most=MAX_POINTS))
    if not isinstance(data, Mapping) or data.get("tool") not in TOOLS:
        raise invalid
    if data["tool"] != tool:
        raise Invalid(messages.PAINT_WRONG_TOOL.format(tool=tool))
    raw = data.get("points")
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not 1 <= len(raw) <= MAX_POINTS:
        raise invalid
    height, width = shape[0], shape[1]
    points: list[tuple[int, int]] = []
    for point in raw:
        if not isinstance(point, Sequence) or isinstance(point, str) or len(point) != 2:
            raise invalid
        x, y = whole(point[0], 0, width - 1), whole(point[1], 0, height - 1)
        if x is None or y is None:
            raise invalid
        if (x, y) not in points:
            points.append((x, y))
    if tool == "brush":
        amount = whole(data.get("amount"), -255, 255)
        if not amount:
            raise invalid
        return Stroke(tool, tuple(points), amount=amount)
    value = whole(data.get("value"), 0, 255)
    if value is None:
        raise invalid
    return Stroke(tool, tuple(points), value=value)


def apply_stroke(clean: np.ndarray, painted: np.ndarray, stroke: Stroke, budget: int) -> np.ndarray:
    """``painted`` after ``stroke``, within the budget: the brush clips each pixel to ±budget grey levels of
    ``clean``; the pencil refuses (Invalid) a stroke after which more than ``budget`` pixels differ."""
    out = painted.astype(np.int16).copy()
    base = clean.astype(np.int16)
    for x, y in stroke.points:
        if stroke.tool == "brush":
            out[y, x] = np.clip(out[y, x] + stroke.amount, base[y, x] - budget, base[y, x] + budget)
        else:
            out[y, x] = stroke.value
    out = np.clip(out, 0, 255)
    if stroke.tool == "pencil":
        changed = changed_pixels(clean, out)
        if changed > budget:
            raise Invalid(messages.PAINT_OVER_BUDGET.format(pixels=changed, budget=budget))
    return out.astype(np.uint8)


def replay(clean: np.ndarray, tool: str, budget: int, strokes: Sequence[Any]) -> np.ndarray:
    """The painted image: ``clean`` with every stored stroke applied in order (each was accepted within budget)."""
    painted = clean.copy()
    for data in strokes:
        painted = apply_stroke(clean, painted, parse_stroke(data, tool=tool, shape=clean.shape), budget)
    return painted


def changed_pixels(clean: np.ndarray, painted: np.ndarray) -> int:
    differs = clean.astype(np.int16) != painted.astype(np.int16)
    return int(differs.any(axis=-1).sum()) if differs.ndim == 3 else int(differs.sum())


@dataclass(frozen=True)
class Change:
    """How big an edit is: pixels that differ from the original, and the L2 and L∞ sizes in pixel units [0, 1]."""

    pixels: int
    l2: float
    linf: float


def measure(clean: np.ndarray, painted: np.ndarray) -> Change:
    delta = (painted.astype(np.float64) - clean.astype(np.float64)) / 255.0
    return Change(
        pixels=changed_pixels(clean, painted),
        l2=float(np.sqrt((delta**2).sum())),
        linf=float(np.abs(delta).max()) if delta.size else 0.0,
    )


def points(change: Change, *, fooled: bool) -> int:
    """100 for the smallest conceivable win, falling as the change grows: 100 / (1 + pixels/10 + L2). Ten more
    pixels cost as much as one more unit of L2 (a pixel turned from black to white). Nothing without a win."""
    if not fooled:
        return 0
    return max(1, round(100.0 / (1.0 + change.pixels / 10.0 + change.l2)))


def top_answers(names: Sequence[str], probs: Sequence[float], k: int = 3) -> list[tuple[str, float]]:
    """The opponent's k most likely labels and their probabilities, best first (ties: the lower label)."""
    order = sorted(range(len(probs)), key=lambda label: (-probs[label], label))[:k]
    return [(names[label], float(probs[label])) for label in order]


def check_open(status: str, strokes: int) -> None:
    if status != "painting":
        raise Conflict(messages.PAINT_FINISHED)
    if strokes >= MAX_STROKES:
        raise Conflict(messages.PAINT_FINISHED)


def grey(levels: float) -> str:
    return f"{round(levels * 255)}/255"


def comparison(tool: str, mine: Change, machine: Mapping[str, Any] | None) -> str:
    """The sentence beside the result: what the player needed against the machine's smallest attack."""
    if tool == "pencil":
        you = f"You needed {mine.pixels} pixel{'s' if mine.pixels != 1 else ''}"
    else:
        you = f"You needed a change of up to {grey(mine.linf)} grey levels on {mine.pixels} pixels (L2 {mine.l2:.2f})"
    if machine is None:
        return you + "; the machine's best attack is still being worked out."
    name = machine["attack"]
    if not machine["found"]:
        return you + f"; the machine's best attack ({name}) did not fool it within its search."
    if tool == "pencil":
        count = machine["pixels"]
        return you + f"; the machine's best attack ({name}) needed {count} pixel{'s' if count != 1 else ''}."
    return you + (
        f"; the machine's best attack ({name}) needed {grey(machine['linf'])} on {machine['pixels']} pixels "
        f"(L2 {machine['l2']:.2f})."
    )

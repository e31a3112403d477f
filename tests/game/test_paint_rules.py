"""The rules of a painting (app/game/paint.py), without a server: strokes parsed and applied within the budget,
replay gives the stored image, points fall as the change grows, the comparison sentence."""

from __future__ import annotations

import numpy as np
import pytest

from app.errors import Conflict, Invalid
from app.game import paint

CLEAN = np.full((28, 28), 100, np.uint8)


def brush(points: list[list[int]], amount: int) -> paint.Stroke:
    return paint.parse_stroke({"tool": "brush", "points": points, "amount": amount}, tool="brush", shape=(28, 28))


def test_the_brush_never_leaves_its_budget_nor_0_255() -> None:
    painted = CLEAN
    for _ in range(5):
        painted = paint.apply_stroke(CLEAN, painted, brush([[1, 2], [1, 2], [3, 4]], 40), budget=32)
    assert painted[2, 1] == 132 and painted[4, 3] == 132 and paint.changed_pixels(CLEAN, painted) == 2
    dark = np.zeros((28, 28), np.uint8)
    assert paint.apply_stroke(dark, dark, brush([[0, 0]], -16), budget=32)[0, 0] == 0


def test_a_repeated_point_counts_once_per_stroke() -> None:
    assert brush([[1, 2], [1, 2], [2, 2], [1, 2]], 5).points == ((1, 2), (2, 2))


def test_the_pencil_refuses_a_stroke_past_its_pixel_budget() -> None:
    stroke = paint.parse_stroke(
        {"tool": "pencil", "points": [[0, 0], [1, 0], [2, 0]], "value": 0}, tool="pencil", shape=(28, 28)
    )
    with pytest.raises(Invalid, match="at most 2"):
        paint.apply_stroke(CLEAN, CLEAN, stroke, budget=2)
    same = paint.parse_stroke({"tool": "pencil", "points": [[0, 0]], "value": 100}, tool="pencil", shape=(28, 28))
    assert paint.changed_pixels(CLEAN, paint.apply_stroke(CLEAN, CLEAN, same, budget=0)) == 0


@pytest.mark.parametrize(
    "stroke",
    [
        {"tool": "brush", "points": [[28, 0]], "amount": 1},
        {"tool": "brush", "points": [[0, -1]], "amount": 1},
        {"tool": "brush", "points": [[0, 0]], "amount": 0},
        {"tool": "brush", "points": [[0, 0]], "amount": 256},
        {"tool": "brush", "points": [[0.5, 0]], "amount": 1},
        {"tool": "brush", "points": [[True, 0]], "amount": 1},
        {"tool": "brush", "points": [[0, 0]] * (paint.MAX_POINTS + 1), "amount": 1},
        {"tool": "brush", "points": "0,0", "amount": 1},
        {"tool": "spray", "points": [[0, 0]], "amount": 1},
        [],
    ],
)
def test_malformed_strokes_are_refused(stroke: object) -> None:
    with pytest.raises(Invalid):
        paint.parse_stroke(stroke, tool="brush", shape=(28, 28))


def test_replay_rebuilds_the_painted_image_from_the_stored_strokes() -> None:
    strokes = [brush([[5, 5], [6, 5]], 20).as_json(), brush([[6, 5]], -50).as_json()]
    painted = CLEAN
    for data in strokes:
        painted = paint.apply_stroke(CLEAN, painted, paint.parse_stroke(data, tool="brush", shape=(28, 28)), 32)
    assert np.array_equal(paint.replay(CLEAN, "brush", 32, strokes), painted)
    assert painted[5, 5] == 120 and painted[5, 6] == 70


def test_points_reward_the_smaller_change_and_need_a_win() -> None:
    small, large = paint.Change(2, 0.3, 0.1), paint.Change(40, 2.0, 0.1)
    assert paint.points(small, fooled=True) > paint.points(large, fooled=True) >= 1
    assert paint.points(small, fooled=False) == 0
    assert paint.points(paint.Change(0, 0.0, 0.0), fooled=True) == 100


def test_budgets_and_finished_paintings() -> None:
    assert paint.check_tool("pencil", None) == ("pencil", 40)
    for tool, budget in (("brush", 0), ("brush", 65), ("pencil", 101), ("laser", 3), ("brush", True)):
        with pytest.raises(Invalid):
            paint.check_tool(tool, budget)  # type: ignore[arg-type]
    with pytest.raises(Conflict):
        paint.check_open("fooled", 3)


def test_the_comparison_sentence() -> None:
    machine = {"attack": "one-pixel", "found": True, "pixels": 2, "l2": 1.2, "linf": 1.0}
    assert (
        paint.comparison("pencil", paint.Change(9, 3.0, 1.0), machine)
        == "You needed 9 pixels; the machine's best attack (one-pixel) needed 2 pixels."
    )
    missed = {**machine, "found": False}
    assert "did not fool it" in paint.comparison("pencil", paint.Change(1, 1.0, 1.0), missed)
    linf = {"attack": "pgd", "found": True, "pixels": 500, "l2": 0.5, "linf": 6 / 255}
    text = paint.comparison("brush", paint.Change(40, 1.25, 32 / 255), linf)
    assert text == (
        "You needed a change of up to 32/255 grey levels on 40 pixels (L2 1.25); the machine's best attack (pgd) "
        "needed 6/255 on 500 pixels (L2 0.50)."
    )

"""The attack benchmark's library entry point (what ``arena bench attacks`` will call): rows and Markdown."""

from __future__ import annotations

from torch import Tensor

from app.ml import ArenaModel
from app.ml.measure.bench import format_attack_bench, run_attack_bench


def test_bench_rows_and_table(model: ArenaModel, test_images: tuple[Tensor, Tensor]) -> None:
    images, labels = test_images
    suite = {"fgsm": ({}, 0.1, 8), "square": ({"max_queries": 20}, 0.1, 8)}
    messages: list[str] = []
    rows, ratios = run_attack_bench(model, images, labels, suite=suite, ratios=False, progress=messages.append)
    ours = [r for r in rows if r.impl == "arena"]
    assert [r.attack for r in ours] == ["fgsm", "square"]
    assert ratios == [] and messages[0] == "fgsm (batch 8)"
    assert all(0.0 <= r.success <= 1.0 and r.ms_per_image > 0 for r in rows)
    assert ours[0].median_queries is None and ours[1].median_queries is not None
    assert ours[1].median_queries <= 20
    table = format_attack_bench(rows, ratios)
    assert table.splitlines()[0].startswith("| attack | implementation |")
    assert "| fgsm | arena | white-box | 8 |" in table

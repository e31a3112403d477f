"""The stats page's chart: accuracy against the budget for people and for the model, one line per (condition, attack,
opponent), with 95% Wilson intervals as bands; one panel per norm (grey levels for L-inf/L0, the radius for L2).
matplotlib is loaded lazily (app/stats/plots/figure.py), so importing this module costs nothing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from app.stats.plots.figure import PYPLOT_LOCK, figure_bytes, pyplot
from app.stats.science import GroupStats
from app.stats.trials import bucket_position

SERIES_KEYS = ("condition", "attack", "opponent")
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
X_LABELS = {
    "linf": "L∞ budget (grey levels of 255)",
    "l0": "L0 per-pixel cap (grey levels of 255)",
    "l2": "L2 budget (radius, pixel units)",
}


def accuracy_vs_eps_chart(groups: Sequence[GroupStats], fmt: str, *, title: str = "") -> bytes:
    """``groups`` grouped by at least eps_bucket (and any of condition, attack, opponent, which name the lines)."""
    panels: dict[str, dict[tuple[str, ...], list[tuple[float, GroupStats]]]] = defaultdict(lambda: defaultdict(list))
    for group in groups:
        bucket = group.keys.get("eps_bucket")
        if bucket is None:
            raise ValueError("the chart needs groups keyed by eps_bucket")
        norm, x = bucket_position(bucket)
        series = tuple(str(group.keys[k]) for k in SERIES_KEYS if k in group.keys)
        panels[norm][series].append((x, group))
    norms = [n for n in ("linf", "l0", "l2") if n in panels] or ["linf"]
    with PYPLOT_LOCK:
        plt = pyplot()
        fig, axes = plt.subplots(1, len(norms), figsize=(7.5 * len(norms), 4.6), squeeze=False)
        try:
            colours: dict[tuple[str, ...], str] = {}
            for ax, norm in zip(axes[0], norms, strict=True):
                for series, points in sorted(panels.get(norm, {}).items()):
                    colour = colours.setdefault(series, PALETTE[len(colours) % len(PALETTE)])
                    points.sort(key=lambda p: p[0])
                    name = " / ".join(series)
                    nudge = 0.12 if norm in ("linf", "l0") else 0.012  # people left, model right of the budget
                    for who, style in (("human", "-"), ("model", "--")):
                        xs = [x + (-nudge if who == "human" else nudge) for x, _ in points]
                        ys = [getattr(g, f"{who}_accuracy") for _, g in points]
                        lows = [getattr(g, f"{who}_ci")[0] for _, g in points]
                        highs = [getattr(g, f"{who}_ci")[1] for _, g in points]
                        label = f"{'people' if who == 'human' else 'model'}: {name}" if name else who
                        ax.plot(xs, ys, style, marker="o" if who == "human" else "s", color=colour, label=label)
                        ax.fill_between(xs, lows, highs, color=colour, alpha=0.15 if who == "human" else 0.08)
                        # Bars too, so that an interval shows where a line has a single budget (no band width).
                        below = [y - low for y, low in zip(ys, lows, strict=True)]
                        above = [high - y for y, high in zip(ys, highs, strict=True)]
                        ax.errorbar(xs, ys, yerr=[below, above], fmt="none", ecolor=colour, capsize=3, alpha=0.6)
                if norm in ("linf", "l0") and panels.get(norm):
                    ax.set_xticks(sorted({x for points in panels[norm].values() for x, _ in points}))
                ax.set_xlabel(X_LABELS[norm])
                ax.set_ylabel("accuracy")
                ax.set_ylim(-0.02, 1.02)
                ax.grid(alpha=0.3)
                if panels.get(norm):
                    ax.legend(loc="best", fontsize=7)
                else:
                    ax.text(0.5, 0.5, "no answers", ha="center", va="center", transform=ax.transAxes)
            fig.suptitle(title or "Accuracy by budget: people (solid) and model (dashed), 95% Wilson bands")
            fig.tight_layout()
            return figure_bytes(fig, fmt)
        finally:
            plt.close(fig)

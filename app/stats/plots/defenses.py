"""The defense lab's accuracy-vs-eps chart (PNG or SVG), drawn with the same matplotlib setup as the event charts."""

from __future__ import annotations

from collections.abc import Sequence

from app.stats.defense_curves import Curve
from app.stats.plots.figure import PYPLOT_LOCK, figure_bytes, pyplot

ROLE_STYLES = {"naive": "--", "adaptive": "-", "strongest": ":"}


def defense_curves_chart(curves: Sequence[Curve], fmt: str, *, title: str = "") -> bytes:
    """One line per curve with 95% Wilson intervals; naive attacks dashed, adaptive solid, strongest dotted."""
    with PYPLOT_LOCK:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(7, 4.2))
        try:
            for curve in curves:
                xs = [p.eps * 255 for p in curve.points]
                ys = [p.accuracy for p in curve.points]
                low = [p.accuracy - p.interval[0] for p in curve.points]
                high = [p.interval[1] - p.accuracy for p in curve.points]
                ax.errorbar(
                    xs, ys, yerr=[low, high], fmt="o", linestyle=ROLE_STYLES.get(curve.role, "-"), capsize=3,
                    label=curve.label,
                )  # fmt: skip
            ax.set_xlabel("L∞ budget (grey levels of 255)")
            ax.set_ylabel("accuracy under attack")
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            if curves:
                ax.legend(fontsize=7, loc="lower left")
            else:
                ax.text(0.5, 0.5, "no curve measured yet", ha="center", va="center", transform=ax.transAxes)
            if title:
                ax.set_title(title)
            fig.tight_layout()
            return figure_bytes(fig, fmt)
        finally:
            plt.close(fig)

"""Charts for an event report, as PNG or SVG bytes for slides. matplotlib loads on the first chart
(app/stats/plots/figure.py), so the web tier does not pay for it at start-up."""

from __future__ import annotations

from collections.abc import Sequence

from app.stats.events import Confusions, EpsRow
from app.stats.plots.figure import CHART_FORMATS, PYPLOT_LOCK, figure_bytes, pyplot

# The formats these charts come in are part of their interface (the report route checks a request against them).
__all__ = ["CHART_FORMATS", "HUMAN_COLOUR", "MODEL_COLOUR", "accuracy_by_eps_chart", "confusion_chart"]
HUMAN_COLOUR = "#1f77b4"
MODEL_COLOUR = "#d62728"


def accuracy_by_eps_chart(rows: Sequence[EpsRow], fmt: str, *, title: str = "") -> bytes:
    """Human and model accuracy against the budget (grey levels), with 95% Wilson intervals as error bars."""
    with PYPLOT_LOCK:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(7, 4.2))
        try:
            xs = [row.grey for row in rows]
            for who, colour, offset in (("human", HUMAN_COLOUR, -0.12), ("model", MODEL_COLOUR, 0.12)):
                values = [getattr(row, who).value for row in rows]
                lows = [getattr(row, who).value - getattr(row, who).interval[0] for row in rows]
                highs = [getattr(row, who).interval[1] - getattr(row, who).value for row in rows]
                ax.errorbar(
                    [x + offset for x in xs],
                    values,
                    yerr=[lows, highs],
                    fmt="o-",
                    color=colour,
                    capsize=4,
                    label="people" if who == "human" else "the model",
                )
            ax.set_xlabel("perturbation budget (grey levels of 255)")
            ax.set_ylabel("accuracy")
            ax.set_ylim(-0.02, 1.02)
            if xs:
                ax.set_xticks(xs)
                ax.set_xlim(min(xs) - 1, max(xs) + 1)
            ax.grid(alpha=0.3)
            ax.legend(loc="lower left")
            ns = ", ".join(f"{row.grey}: n={row.human.n}" for row in rows)
            ax.set_title(title or "Accuracy by budget, 95% Wilson intervals")
            if ns:
                fig.text(0.01, -0.02, f"answers per budget — {ns}", fontsize=8, color="#555555")
            return figure_bytes(fig, fmt)
        finally:
            plt.close(fig)


def confusion_chart(confusions: Confusions, class_names: Sequence[str], fmt: str) -> bytes:
    """Two confusion matrices side by side: what people answered and what the model answered, per true class."""
    with PYPLOT_LOCK:
        plt = pyplot()
        classes = len(class_names)
        fig, axes = plt.subplots(1, 2, figsize=(12, 5.6))
        try:
            for ax, who, label in zip(axes, ("human", "model"), ("people", "the model"), strict=True):
                matrix = confusions.matrix(who, classes)
                image = ax.imshow(matrix, cmap="Blues")
                ax.set_title(f"What {label} answered")
                ax.set_xticks(range(classes), class_names, rotation=60, ha="right", fontsize=8)
                ax.set_yticks(range(classes), class_names, fontsize=8)
                ax.set_xlabel("answer")
                ax.set_ylabel("truth")
                peak = max((max(r) for r in matrix), default=0) or 1
                for t in range(classes):
                    for a in range(classes):
                        if matrix[t][a]:
                            colour = "white" if matrix[t][a] > peak / 2 else "black"
                            ax.text(a, t, str(matrix[t][a]), ha="center", va="center", fontsize=7, color=colour)
                fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
            fig.tight_layout()
            return figure_bytes(fig, fmt)
        finally:
            plt.close(fig)

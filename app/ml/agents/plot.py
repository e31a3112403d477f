"""The plot of a card's attack figures: return against budget, and against the share of attacked steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the Agg backend must be chosen before pyplot loads)

from app.ml.agents.card import ATTACK_TITLES  # noqa: E402

MARKERS = {"fgsm": "o", "timed": "s", "induction": "^"}


def _errors(rows: list[dict[str, Any]]) -> list[list[float]]:
    return [[row["mean"] - row["low"] for row in rows], [row["high"] - row["mean"] for row in rows]]


def plot_attacks(attacks: dict[str, Any], clean: dict[str, Any], stem: Path) -> tuple[Path, Path]:
    """Draw both panels with 95% intervals as error bars; write ``<stem>.png`` and ``<stem>.svg``."""
    figure, (by_budget, by_share) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for name, title in ATTACK_TITLES.items():
        rows = [row for row in attacks["by_budget"] if row["attack"] == name]
        by_budget.errorbar(
            [row["budget"] for row in rows],
            [row["mean"] for row in rows],
            yerr=_errors(rows),
            marker=MARKERS[name],
            capsize=3,
            label=title,
        )
    for axes in (by_budget, by_share):
        axes.axhline(clean["mean"], color="grey", linestyle=":", label=f"clean ({clean['mean']:.1f})")
        axes.set_ylim(0, 520)
        axes.grid(alpha=0.3)
    by_budget.set_xlabel("budget (L∞ on the normalised state)")
    by_budget.set_ylabel(f"return (mean of {clean['n']} episodes, 95% interval)")
    by_budget.set_title("Return against budget")
    by_budget.legend(fontsize=8, loc="best")
    timed = attacks["by_attacked_steps"]
    step_counts = ", ".join(str(row["max_attacked_steps"]) for row in timed)
    by_share.errorbar(
        [row["attacked_share"] for row in timed],
        [row["mean"] for row in timed],
        yerr=_errors(timed),
        marker=MARKERS["timed"],
        capsize=3,
        color="C1",
        label=f"timed, at most N steps (N = {step_counts})",
    )
    every_step = [
        row for row in attacks["by_budget"] if row["attack"] == "fgsm" and row["budget"] == attacks["timed_budget"]
    ]
    by_share.errorbar(
        [1.0 for _ in every_step],
        [row["mean"] for row in every_step],
        yerr=_errors(every_step),
        marker=MARKERS["fgsm"],
        capsize=3,
        color="C0",
        linestyle="none",
        label="FGSM every step",
    )
    by_share.set_xscale("symlog", linthresh=0.01)
    by_share.set_xlabel("share of attacked steps")
    by_share.set_title(f"Return against the share of attacked steps (budget {attacks['timed_budget']})")
    by_share.legend(fontsize=8, loc="best")
    figure.tight_layout()
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    # No date and a fixed id salt in the SVG, so that the same figures give the same bytes.
    with plt.rc_context({"svg.hashsalt": "cartpole-attacks"}):
        figure.savefig(png, dpi=120)
        figure.savefig(svg, metadata={"Date": None})
    plt.close(figure)
    return png, svg

"""Charts for "why the machine fails" (issue #7), drawn from an ExplainResult as PNG or SVG bytes: the saliency maps,
the decision-boundary slice and the linearity picture. matplotlib is imported lazily (app/stats/plots/figure.py), so the
web tier pays for it only when a chart is drawn. The numbers come from app/ml/measure/explain.py through the model
service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from app.ml.service.explain_contracts import ExplainResult
from app.stats.plots.figure import CHART_FORMATS, PYPLOT_LOCK, figure_bytes, pyplot

EXPLAIN_KINDS = ("saliency", "slice", "linearity")
__all__ = ["CHART_FORMATS", "EXPLAIN_KINDS", "explain_chart", "slice_colours"]
IMAGE_MARK = {"marker": "o", "s": 90, "facecolor": "white", "edgecolor": "black", "linewidth": 1.5, "zorder": 3}
SHOWN_MARK = {"marker": "*", "s": 220, "facecolor": "yellow", "edgecolor": "black", "linewidth": 1.2, "zorder": 3}


def slice_colours(classes: Sequence[int], total: int) -> dict[int, tuple[float, float, float, float]]:
    """A colour per class: tab10 by class index for up to 10 classes (the same class always gets the same colour),
    otherwise tab20 by order of appearance (ImageNet has 1,000 classes; a slice shows a handful)."""
    plt = pyplot()
    if total <= 10:
        cmap = plt.get_cmap("tab10")
        return {int(c): cmap(int(c)) for c in classes}
    cmap = plt.get_cmap("tab20")
    return {int(c): cmap(i % 20) for i, c in enumerate(sorted(set(int(c) for c in classes)))}


def _show_image(ax: Any, image: np.ndarray, title: str) -> None:
    if image.ndim == 2:
        ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.axis("off")


def _saliency(plt: Any, result: ExplainResult, clean: np.ndarray, shown: np.ndarray, names: Sequence[str]) -> Any:
    fig, axes = plt.subplots(1, 4, figsize=(11, 3.2))
    if result.saliency_clean is None or result.saliency_shown is None:
        for ax in axes:
            ax.axis("off")
        axes[0].text(0, 0.5, "No saliency: this model has no useful gradient.", fontsize=11)
        return fig
    top = float(max(result.saliency_clean.max(), result.saliency_shown.max())) or 1.0
    _show_image(axes[0], clean, f"clean: answered {names[result.clean_label]}")
    axes[1].imshow(result.saliency_clean, cmap="inferno", vmin=0, vmax=top, interpolation="nearest")
    axes[1].set_title("saliency (clean)", fontsize=10)
    axes[1].axis("off")
    _show_image(axes[2], shown, f"shown: answered {names[result.shown_label]}")
    image = axes[3].imshow(result.saliency_shown, cmap="inferno", vmin=0, vmax=top, interpolation="nearest")
    axes[3].set_title("saliency (shown)", fontsize=10)
    axes[3].axis("off")
    fig.colorbar(image, ax=axes[3], fraction=0.046, pad=0.04)
    fig.suptitle(
        f"SmoothGrad, {result.saliency_samples} noisy copies, noise sd {result.saliency_sigma:.2f}; one colour scale",
        fontsize=9,
        color="#555555",
    )
    return fig


def _slice(plt: Any, result: ExplainResult, names: Sequence[str]) -> Any:
    # matplotlib loads on the first chart (figure.py), not when the web tier imports this module.
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    labels = result.slice_labels
    present = sorted(int(c) for c in np.unique(labels))
    colours = slice_colours(present, len(names))
    index = {c: i for i, c in enumerate(present)}
    fig, ax = plt.subplots(figsize=(6.8, 5.2))
    a, b = result.slice_a, result.slice_b
    step_a = (a[1] - a[0]) / 2 if len(a) > 1 else 0.5
    step_b = (b[1] - b[0]) / 2 if len(b) > 1 else 0.5
    ax.imshow(
        np.vectorize(index.get)(labels),
        cmap=ListedColormap([colours[c] for c in present]),
        vmin=-0.5,
        vmax=len(present) - 0.5,
        origin="lower",
        extent=(a[0] - step_a, a[-1] + step_a, b[0] - step_b, b[-1] + step_b),
        aspect="auto",
        interpolation="nearest",
    )
    ax.scatter([0.0], [0.0], **IMAGE_MARK)
    ax.scatter([a[result.slice_shown]], [0.0], **SHOWN_MARK)
    ax.axhline(0.0, color="black", linewidth=0.6, alpha=0.4)
    ax.set_xlabel("towards the shown image (distance in pixel units, L2)")
    ax.set_ylabel("a random direction at right angles (L2)")
    handles = [Patch(facecolor=colours[c], edgecolor="none", label=names[c]) for c in present]
    handles += [
        Line2D(
            [],
            [],
            linestyle="none",
            marker="o",
            markerfacecolor="white",
            markeredgecolor="black",
            label="the clean image",
        ),
        Line2D(
            [],
            [],
            linestyle="none",
            marker="*",
            markersize=13,
            markerfacecolor="yellow",
            markeredgecolor="black",
            label="the image you were shown",
        ),
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=9, frameon=False)
    ax.set_title("The model's answer on a slice through the image", fontsize=11)
    return fig


def _linearity(plt: Any, result: ExplainResult, names: Sequence[str], eps: float, norm: str) -> Any:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if result.line_t is None or result.line_logits is None:
        ax.axis("off")
        ax.text(0, 0.5, "No linearity picture: this model has no useful gradient.", fontsize=11)
        return fig
    t = result.line_t
    colours = slice_colours(result.line_classes, len(names))
    for column, (cls, r2) in enumerate(zip(result.line_classes, result.line_r2, strict=True)):
        values = result.line_logits[:, column].astype(np.float64)
        slope, intercept = np.polyfit(t, values, 1)
        ax.plot(t, values, "-", color=colours[cls], linewidth=2, label=f"{names[cls]} (R² {r2:.2f})")
        ax.plot(t, slope * t + intercept, ":", color=colours[cls], linewidth=1)
    if eps > 0:
        for edge in (-eps, eps):
            ax.axvline(edge, color="#777777", linewidth=0.8, linestyle="--")
    ax.axvline(0.0, color="black", linewidth=0.6)
    unit = "pixel units per pixel" if norm != "l2" else "L2 distance"
    ax.set_xlabel(f"step t along the loss gradient ({unit}); dashed: ± the round's budget")
    ax.set_ylabel("logit (the model's score)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="best")
    ax.set_title("The model's scores along the attack direction (dotted: straight-line fits)", fontsize=11)
    return fig


def explain_chart(
    kind: str,
    result: ExplainResult,
    *,
    class_names: Sequence[str],
    clean: np.ndarray,
    shown: np.ndarray,
    eps: float,
    norm: str,
    fmt: str = "png",
) -> bytes:
    """One of EXPLAIN_KINDS as PNG or SVG bytes."""
    if kind not in EXPLAIN_KINDS:
        raise ValueError(f"unknown explain chart {kind!r}; one of {', '.join(EXPLAIN_KINDS)}")
    if fmt not in CHART_FORMATS:
        raise ValueError(f"unknown chart format {fmt!r}; one of {', '.join(CHART_FORMATS)}")
    with PYPLOT_LOCK:
        plt = pyplot()
        if kind == "saliency":
            fig = _saliency(plt, result, clean, shown, class_names)
        elif kind == "slice":
            fig = _slice(plt, result, class_names)
        else:
            fig = _linearity(plt, result, class_names, eps, norm)
        try:
            return figure_bytes(fig, fmt)
        finally:
            plt.close(fig)

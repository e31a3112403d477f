"""What every chart shares: the lazily loaded pyplot (Agg backend), the lock around it and the PNG/SVG encoder.
matplotlib is imported on the first chart, not when a plot module is imported, so the web tier does not pay for it
at start-up."""

from __future__ import annotations

import io
import threading
from typing import Any

CHART_FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
# pyplot keeps global state; one chart at a time keeps concurrent downloads from drawing on each other.
PYPLOT_LOCK = threading.Lock()


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, imported on first use (a second or more: the web tier starts without)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_bytes(fig: Any, fmt: str) -> bytes:
    """The figure as PNG or SVG (the SVG without a date, so that the same chart gives the same bytes)."""
    if fmt not in CHART_FORMATS:
        raise ValueError(f"unknown chart format {fmt!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=150, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
    return buffer.getvalue()

"""Proof against what the attack never saw: the everyday treatments a shared photo gets, and the held-out engines.

Each check treats the cloaked photo (:data:`CHECKS`: JPEG at 95, 85 and 75, resize to 512 and 256 px on the long
side, a 90% centre crop, and a PNG -> JPEG round trip as a photo site does on upload, at Pillow's default quality
75 with 4:2:0 chroma subsampling), then asks every judge again: the classifier's goal (is the answer still out of the
family / off the label / on the target?), the held-out classifier (EfficientNet-Lite2), the two search engines the
attack saw (pHash, Lite0 embedding) and the two it never saw (PDQ, Lite2 embedding). The first row,
"as delivered", is the untreated PNG. numpy and Pillow only: the judges come in as one ``measure`` function.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from app.ml.cloak.search import Match, SearchIndex, centre_crop, jpeg, resized

ENGINES = ("phash", "embedding", "pdq", "embedding-lite2")


def png_to_jpeg(pixels: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    buffer.seek(0)
    with Image.open(buffer) as png:
        out = io.BytesIO()
        png.convert("RGB").save(out, format="JPEG")  # Pillow's defaults: quality 75, 4:2:0
    out.seek(0)
    with Image.open(out) as image:
        return np.array(image.convert("RGB"), dtype=np.uint8)


CHECKS: tuple[tuple[str, Callable[[np.ndarray], np.ndarray]], ...] = (
    ("as delivered", lambda p: p),
    ("JPEG 95", lambda p: jpeg(p, 95)),
    ("JPEG 85", lambda p: jpeg(p, 85)),
    ("JPEG 75", lambda p: jpeg(p, 75)),
    ("resized to 512 px", lambda p: resized(p, long_side=512)),
    ("resized to 256 px", lambda p: resized(p, long_side=256)),
    ("90% crop", lambda p: centre_crop(p, 0.90)),
    ("PNG -> JPEG", png_to_jpeg),
)


@dataclass(frozen=True)
class Measured:
    """What every judge says about one image: the two classifiers' probabilities and each engine's descriptor."""

    probs: np.ndarray  # main opponent (Lite0)
    heldout_probs: np.ndarray | None  # held-out classifier (Lite2)
    descriptors: dict[str, np.ndarray]


@dataclass(frozen=True)
class CheckRow:
    check: str
    top1: Any  # Prediction of the main opponent
    heldout_top1: Any  # Prediction of the held-out classifier, or None
    goal_met: bool
    heldout_goal_met: bool | None
    matches: tuple[Match, ...]

    @property
    def beaten(self) -> dict[str, bool]:
        return {m.engine: m.beaten for m in self.matches}

    @property
    def survives(self) -> bool:
        """The goal holds and every engine is beaten."""
        return self.goal_met and all(m.beaten for m in self.matches)


def survival_table(
    cloaked: np.ndarray,
    reference: Measured,
    *,
    measure: Callable[[np.ndarray], Measured],
    goal_met: Callable[[np.ndarray], bool],
    top1: Callable[[np.ndarray], Any],
    index: SearchIndex | None,
    checks: tuple[tuple[str, Callable[[np.ndarray], np.ndarray]], ...] = CHECKS,
    engines: tuple[str, ...] = ENGINES,
    exclude: int | None = None,
) -> tuple[CheckRow, ...]:
    rows = []
    for name, treat in checks:
        seen = measure(treat(cloaked))
        matches: tuple[Match, ...] = ()
        if index is not None:
            matches = tuple(
                index.lookup(engine, seen.descriptors[engine], reference.descriptors[engine], exclude=exclude)
                for engine in engines
                if engine in seen.descriptors and engine in index.engines
            )
        held = seen.heldout_probs
        rows.append(
            CheckRow(
                check=name,
                top1=top1(seen.probs),
                heldout_top1=top1(held) if held is not None else None,
                goal_met=goal_met(seen.probs),
                heldout_goal_met=goal_met(held) if held is not None else None,
                matches=matches,
            )
        )
    return tuple(rows)

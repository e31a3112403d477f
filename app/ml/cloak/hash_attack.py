"""The cloak's pHash objective: not just "differ from the original by more than the threshold", which leaves the
original the nearest gallery entry, but "look like another gallery photo", so that the decoy photo and its
variants outrank the original as well.

Each of pHash's 64 bits is a DCT coefficient above or below the median of the 64 (app/ml/cloak/stand_ins.py,
exact on the delivered image). A copy that flips ``f`` of the ``D`` bits where the original and a decoy photo
differ lies ``f`` bits from the original and ``D - f`` from the decoy, so the decoy (and its variants, a few bits
around it) outrank the original once ``f`` passes ``D/2`` by a few bits, and the threshold once ``f`` passes it.
The cloak's budget flips few bits (a grey level moves a coefficient little against the spread of the 64), so it
spends them where they are cheapest: on the ``D//2 + SPARE_BITS`` differing bits nearest the median (at least
threshold + 1). The objective is a hinge on those bits, ``relu(HINGE_MARGIN - t_i * z_i)``, with ``z_i`` the
coefficient's signed distance to the median (in units of the mean distance) and ``t_i = ±1`` the decoy's bit;
a bit past the median by the margin costs nothing and gets no gradient.

The decoy is the gallery photo for which that set is cheapest: the least total ``|z_i| + HINGE_MARGIN``. The
nearest photo in Hamming distance can be the more expensive one when its differing bits lie far from the median.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from app.ml.cloak.goals import MARGIN
from app.ml.cloak.search import Match, SearchIndex
from app.ml.cloak.stand_ins import phash_margins

ENGINE = "phash"
HINGE_MARGIN = 0.2  # in units of the coefficients' mean distance to their median
SPARE_BITS = 3  # past D/2: the decoy's variants lie a few bits around it, and 5 entries must outrank the original


@dataclass(frozen=True)
class HashDecoy:
    original: np.ndarray  # (64,) bool: the upload's pHash
    decoy: np.ndarray  # (64,) bool: the hash the cloak moves toward
    flip: np.ndarray  # (64,) bool: the bits the hinge pushes across the median (toward the decoy's)
    decoy_name: str
    index: SearchIndex
    exclude: int | None  # the gallery photo being cloaked, when it is one of the gallery's own

    @classmethod
    def choose(cls, clean: Tensor, index: SearchIndex, exclude: int | None) -> HashDecoy:
        with torch.no_grad():
            margins = phash_margins(clean).cpu().numpy()
        original = margins > 0
        threshold = float(index.thresholds[ENGINE])
        best, best_cost, best_flip = None, np.inf, original
        for photo, row in sorted(index.originals.items()):
            differ = np.flatnonzero(index.descriptors[ENGINE][row].astype(bool) != original)
            if photo == exclude or len(differ) <= threshold:  # the photo itself, or a copy of it
                continue
            need = min(len(differ), max(len(differ) // 2 + SPARE_BITS, int(threshold) + 1))
            cheapest = differ[np.argsort(np.abs(margins[differ]), kind="stable")[:need]]
            cost = float((np.abs(margins[cheapest]) + HINGE_MARGIN).sum())
            if cost < best_cost:
                best, best_cost = photo, cost
                best_flip = np.zeros_like(original)
                best_flip[cheapest] = True
        if best is None:
            raise ValueError("the gallery holds no other photo to use as a pHash decoy")
        decoy = index.descriptors[ENGINE][index.originals[best]].astype(bool)
        return cls(original, decoy, best_flip, index.names[best], index, exclude)

    def loss(self, x: Tensor) -> tuple[Tensor, list[np.ndarray]]:
        """(the mean hinge over the bits to flip, which the attack lowers; [the exact pHash bits of ``x``])."""
        margins = phash_margins(x)
        target = torch.from_numpy(np.where(self.decoy, 1.0, -1.0)).to(margins)
        chosen = torch.from_numpy(self.flip).to(margins.device)
        hinge = torch.relu(HINGE_MARGIN - target * margins)[chosen].mean()
        return hinge.float(), [margins.detach().cpu().numpy() > 0]

    def verdict(self, bits: np.ndarray) -> Match:
        """How the search answers a copy whose pHash is ``bits``: is the original still found?"""
        return self.index.lookup(ENGINE, bits, self.original, exclude=self.exclude)

    def standing(self, bits: np.ndarray) -> tuple[int, float]:
        """(1 if the search no longer finds the original, else 0; progress toward that, in [0, MARGIN + 1]): how
        the cloak ranks its iterates."""
        found = self.verdict(bits)
        progress = min(found.distance / max(found.threshold, 1.0), MARGIN) + min((found.rank - 1) / found.k, 1.0)
        return int(found.beaten), progress

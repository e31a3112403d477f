"""Science-mode conditions: the mix parser, the draw, and what the model service shows under each condition."""

from __future__ import annotations

import collections

import pytest

from app.errors import Invalid
from app.game import conditions


def test_mixes_parse_normalise_and_refuse_nonsense() -> None:
    assert conditions.parse_mix(None) == {"adversarial": 1.0}
    assert conditions.parse_mix("") == conditions.parse_mix("adversarial") == {"adversarial": 1.0}
    mix = conditions.parse_mix("adversarial=3, clean=1")
    assert mix == {"adversarial": 0.75, "clean": 0.25}
    assert conditions.parse_mix({"noise": 2, "flipped": 2, "clean": 0}) == {"noise": 0.5, "flipped": 0.5}
    for bad in ("adversarial=", "=1", "laser=1", "clean=-1", "clean=0", "clean=nan", {"clean": "lots"}):
        with pytest.raises(Invalid):
            conditions.parse_mix(bad)


def test_the_draw_follows_the_weights() -> None:
    mix = conditions.parse_mix("adversarial=0.8,clean=0.2")
    counts = collections.Counter(conditions.draw(mix) for _ in range(4000))
    assert set(counts) == {"adversarial", "clean"}
    # 4000 draws at p = 0.2: the standard deviation of the share is 0.0063; 0.17..0.23 is ~5 sigma either side.
    assert 0.17 < counts["clean"] / 4000 < 0.23

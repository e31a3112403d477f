"""The eps buckets trials are grouped by."""

from __future__ import annotations

import pytest

from app.stats.trials import bucket_position, eps_bucket


def test_eps_buckets() -> None:
    assert eps_bucket(8 / 255, "linf") == "linf:8/255"
    assert eps_bucket(0.0313725, "linf") == "linf:8/255"  # float noise lands on the grey level
    assert eps_bucket(1.0, "l0") == "l0:255/255"
    assert eps_bucket(1.47, "l2") == "l2:1.5"
    assert bucket_position("linf:16/255") == ("linf", 16.0)
    with pytest.raises(ValueError):
        eps_bucket(0.1, "l7")

"""What a training run is asked for, and the defaults filled in."""

from __future__ import annotations

import pytest

from app.ml.opponents.specs import opponent_spec
from app.ml.training.options import TrainingOptions, hyperparameters


def test_hyperparameters_default_to_the_spec_and_refuse_nonsense() -> None:
    spec = opponent_spec("fashion-magnet")
    assert hyperparameters(spec, TrainingOptions()) == (spec.epochs, spec.batch_size, spec.lr)
    assert hyperparameters(spec, TrainingOptions(epochs=2, batch_size=16, lr=0.5)) == (2, 16, 0.5)
    for bad in ((0, None, None), (None, 0, None), (None, None, 0.0)):
        epochs, batch_size, lr = bad
        with pytest.raises(ValueError, match="need epochs >= 1, batch_size >= 1 and lr > 0"):
            hyperparameters(spec, TrainingOptions(epochs=epochs, batch_size=batch_size, lr=lr))

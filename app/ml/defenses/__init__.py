"""Defenses that wrap a trained classifier without retraining it (issue #8's defense lab).

Each defended model is an :class:`~app.ml.model.ArenaModel` (so every attack, the model service and the cards
work on it unchanged) whose ``forward`` applies the defense in pixel space before the net. A defense that
transforms its input also offers :meth:`InputDefense.straight_through`, the same model with the transform's
backward pass replaced by the identity: BPDA (Athalye, Carlini & Wagner 2018), what an adaptive attack
differentiates instead of the real, gradient-masking transform. A defense with a detector offers
:meth:`InputDefense.detect` (True where an input is flagged as adversarial) and its score.
"""

from app.ml.defenses.base import InputDefense, attack_view
from app.ml.defenses.defense_gan import DefenseGAN
from app.ml.defenses.jpeg import JPEGCompression, jpeg_round_trip
from app.ml.defenses.magnet import MagNet
from app.ml.defenses.squeezing import FeatureSqueezing, bit_depth, median_2x2

__all__ = [
    "DefenseGAN",
    "FeatureSqueezing",
    "InputDefense",
    "JPEGCompression",
    "MagNet",
    "attack_view",
    "bit_depth",
    "jpeg_round_trip",
    "median_2x2",
]

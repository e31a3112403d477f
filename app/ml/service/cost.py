"""What an image job costs the model worker, in compute units, for admission (app/ml/service/admission.py).

One unit is one forward+backward pass of one image through fashion-cnn on the model worker (the "floor" of
app/ml/measure/bench.py): about 3.95 ms per image batched at 64 on the 2-core reference CPU, one torch thread
(benchmarks/RESULTS.md, "Batching ceiling of this CPU"). A PGD-20 round is 20 units by that definition.

A job costs ``attack units x opponent factor``. Plain Python, no torch: the web tier may price a job too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.ml.service.contracts import ImageJob

# The round attacks table: "Round attacks (2026-11-25, lead ...)" in benchmarks/RESULTS.md, each attack's median ms
# per round through the real model service as a multiple of PGD-20's (measured interleaved in the same run, so the
# ratio survives the load), times PGD-20's 20 units. Rows from the "After" table where the attack is in it.
PGD20_UNITS = 20.0


@dataclass(frozen=True)
class AttackCost:
    """The units of one job at the parameters it was measured with, against fashion-cnn. Work grows linearly with
    ``scales_with`` (steps or queries), whose value was ``measured_at`` then and is ``default`` when a job leaves it
    out. ``forward_only``: score and decision attacks query the model without gradients, so the opponent's forward
    factor applies instead of its forward+backward one."""

    units: float
    scales_with: str = ""
    measured_at: int = 1
    default: int = 1
    forward_only: bool = False

    def for_params(self, params: Mapping[str, Any]) -> float:
        if not self.scales_with:
            return self.units
        value = params.get(self.scales_with, self.default)
        amount = value if isinstance(value, int | float) and not isinstance(value, bool) else self.default
        return self.units * max(float(amount), 1.0) / self.measured_at


def _ratio(times_pgd20: float) -> float:
    return round(times_pgd20 * PGD20_UNITS, 1)


ATTACK_COSTS: Mapping[str, AttackCost] = {
    "pgd": AttackCost(_ratio(1.00), "steps", 20, 20),
    "pgd-l2": AttackCost(_ratio(1.08), "steps", 20, 20),
    "mi-fgsm": AttackCost(_ratio(0.64), "steps", 10, 10),
    "fgsm": AttackCost(_ratio(0.19)),
    "cw": AttackCost(_ratio(1.49), "steps", 60, 100),
    "deepfool": AttackCost(_ratio(1.47), "steps", 50, 50),
    "deepfool-linf": AttackCost(_ratio(0.74), "steps", 50, 50),
    # Crafted on the surrogate (fashion-cnn by default): the opponent only answers the final image.
    "transfer": AttackCost(_ratio(1.07), "steps", 20, 20, forward_only=True),
    "hopskipjump": AttackCost(_ratio(8.66), "max_queries", 500, 1000, forward_only=True),
    "square": AttackCost(_ratio(5.36), "max_queries", 500, 1000, forward_only=True),
    "nes": AttackCost(_ratio(5.56), "max_queries", 500, 1000, forward_only=True),
    "genattack": AttackCost(_ratio(7.00), "max_queries", 500, 1000, forward_only=True),
    "one-pixel": AttackCost(_ratio(5.37), "max_queries", 500, 1000, forward_only=True),
    "evadehc": AttackCost(_ratio(6.35), "max_queries", 500, 1000, forward_only=True),
    # Not in the round attacks table. AdvGAN is one generator forward, 55x cheaper than PGD-10 ("Attack compute
    # limits after ... the folded AdvGAN generator"): what is left of a round is the service's own forwards, as in
    # FGSM's round, so it is charged FGSM's units. The defense lab's adaptive attacks are PGD loops whose every step
    # goes through the defense: PGD's units per step, the opponent's forward+backward factor carrying the defense.
    "advgan": AttackCost(_ratio(0.19)),
    "bpda-pgd": AttackCost(_ratio(1.00), "steps", 20, 20),
    "unrolled-pgd": AttackCost(_ratio(1.00), "steps", 20, 20),
}

# An attack this table does not know is charged as the dearest round it does know (HopSkipJump at 500 queries).
UNKNOWN_ATTACK = AttackCost(_ratio(8.66))
# The clean and noise conditions run no attack: what is left is the service's own forwards, as in FGSM's round.
NO_ATTACK = AttackCost(_ratio(0.19))


@dataclass(frozen=True)
class OpponentFactor:
    """Per-image time of the opponent's forward and forward+backward as multiples of fashion-cnn's."""

    forward: float
    forward_backward: float


# `python benchmarks/opponent_cost.py` (batch 32, one torch thread, median of 7 repetitions interleaved with
# fashion-cnn's; "Opponent cost factors" in benchmarks/RESULTS.md). Factors are never below 1: the service's own
# per-job work (the clean and shown forwards, the defense's verdict, rounding) is in every attack's units above and
# does not shrink with a smaller model, so an opponent cheaper than fashion-cnn is charged as fashion-cnn.
OPPONENT_FACTORS: Mapping[str, OpponentFactor] = {
    "fashion-defgan": OpponentFactor(8.90, 4.39),  # the projection: 4 restarts x 10 Adam steps on G per image
    "fashion-jpeg": OpponentFactor(1.21, 1.20),
    "fashion-magnet": OpponentFactor(1.01, 1.26),
    "fashion-squeezed": OpponentFactor(1.0, 1.03),
}
BASE_FACTOR = OpponentFactor(1.0, 1.0)
# An opponent that was not measured (another pack, a new recipe) is charged as the dearest one that was.
UNKNOWN_OPPONENT = OpponentFactor(8.90, 4.39)
MEASURED_OPPONENTS = frozenset(
    {"fashion-certified", "fashion-cnn", "fashion-distilled", "fashion-forest", "fashion-logreg", "fashion-mlp"}
    | {"fashion-resnet", "fashion-robust"}
)


def opponent_factor(opponent: str) -> OpponentFactor:
    if opponent in OPPONENT_FACTORS:
        return OPPONENT_FACTORS[opponent]
    return BASE_FACTOR if opponent in MEASURED_OPPONENTS else UNKNOWN_OPPONENT


def job_units(job: ImageJob) -> float:
    """The compute units ``job`` holds on the model worker (see the module docstring)."""
    if job.condition in ("clean", "noise"):
        cost = NO_ATTACK
    else:
        cost = ATTACK_COSTS.get(job.attack, UNKNOWN_ATTACK)
    factor = opponent_factor(job.opponent)
    return cost.for_params(dict(job.params)) * (factor.forward if cost.forward_only else factor.forward_backward)


# The default round (PGD-20 on fashion-cnn, app/game/rounds.py RoundPlan): what the admission defaults are sized by.
DEFAULT_ROUND_UNITS = ATTACK_COSTS["pgd"].units

"""Returns over many seeded episodes, with a 95% interval, clean and under each attack.

The interval is a seeded percentile bootstrap of the mean (10,000 resamples): CartPole's return is capped at 500,
so the distribution is lopsided, and the bootstrap needs no assumption about its shape.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from app.ml.agents.attacks import FgsmEveryStep, ObservationAttack, PolicyInduction, StrategicallyTimed
from app.ml.agents.episodes import Episode, run_episode
from app.ml.agents.net import QNetwork

CARD_SEEDS = tuple(range(1000, 1100))
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
BUDGETS = (0.0, 0.05, 0.1, 0.2, 0.3)
# Lin et al. attack where the agent cares; 0.6 of softmax gap picks roughly the top tenth of a clean episode's steps.
TIMED_THRESHOLD = 0.6
TIMED_STEPS = 10
# The share-of-steps sweep runs at a budget where attacking every step leaves the agent half its return.
TIMED_BUDGET = 0.1
TIMED_STEP_COUNTS = (1, 3, 10, 25, 100)

AttackFactory = Callable[[], ObservationAttack | None]


@dataclass(frozen=True)
class ReturnSummary:
    """The mean return of ``n`` seeded episodes with its 95% interval, how many kept the pole up to the time limit,
    and how much of them was attacked."""

    n: int
    at_time_limit: int
    mean: float
    low: float
    high: float
    attacked_steps: float
    attacked_share: float
    induced_share: float | None
    seconds_per_episode: float

    def as_dict(self) -> dict[str, float | None]:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()}


def mean_interval(values: Sequence[float], seed: int = BOOTSTRAP_SEED) -> tuple[float, float, float]:
    """The mean and its 95% percentile-bootstrap interval."""
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(BOOTSTRAP_RESAMPLES, len(data)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(data.mean()), float(low), float(high)


def summarise(episodes: Sequence[Episode], seconds: float) -> ReturnSummary:
    """``induced_share``: of the steps where the attack named a target action, the share the agent took it."""
    mean, low, high = mean_interval([episode.total_return for episode in episodes])
    targeted = [step for episode in episodes for step in episode.steps if step.target_action is not None]
    return ReturnSummary(
        n=len(episodes),
        at_time_limit=sum(not episode.terminated for episode in episodes),
        mean=mean,
        low=low,
        high=high,
        attacked_steps=float(np.mean([episode.attacked_steps for episode in episodes])),
        attacked_share=float(np.mean([episode.attacked_share for episode in episodes])),
        induced_share=float(np.mean([step.action == step.target_action for step in targeted])) if targeted else None,
        seconds_per_episode=seconds / len(episodes),
    )


def measure(agent: QNetwork, make_attack: AttackFactory, seeds: Iterable[int] = CARD_SEEDS) -> ReturnSummary:
    """Run one episode per seed, each with a fresh attack from ``make_attack`` (None: clean)."""
    started = time.perf_counter()
    episodes = [run_episode(agent, seed, make_attack()) for seed in seeds]
    return summarise(episodes, time.perf_counter() - started)


def attack_factories(
    agent: QNetwork, replica: QNetwork, budget: float, timed_steps: int = TIMED_STEPS
) -> dict[str, AttackFactory]:
    """The three attacks of the card at one budget; the timed one attacks at most ``timed_steps`` steps."""
    return {
        FgsmEveryStep.name: lambda: FgsmEveryStep(agent, budget),
        StrategicallyTimed.name: lambda: StrategicallyTimed(agent, budget, TIMED_THRESHOLD, timed_steps),
        PolicyInduction.name: lambda: PolicyInduction(replica, budget),
    }


def attack_sweep(
    agent: QNetwork,
    replica: QNetwork,
    seeds: Sequence[int] = CARD_SEEDS,
    budgets: Sequence[float] = BUDGETS,
    step_counts: Sequence[int] = TIMED_STEP_COUNTS,
    progress: Callable[[str], None] | None = None,
) -> dict[str, list[dict[str, object]]]:
    """Return against budget for each attack, and the timed attack's return against its number of attacked steps
    (so against the share of attacked steps) at :data:`TIMED_BUDGET`."""
    rows: dict[str, list[dict[str, object]]] = {"by_budget": [], "by_attacked_steps": []}
    for budget in budgets:
        for name, factory in attack_factories(agent, replica, budget).items():
            summary = measure(agent, factory, seeds)
            rows["by_budget"].append({"attack": name, "budget": budget, **summary.as_dict()})
            if progress is not None:
                progress(f"{name} budget {budget}: {summary.mean:.1f} [{summary.low:.1f}, {summary.high:.1f}]")
    for steps in step_counts:
        factory = attack_factories(agent, replica, TIMED_BUDGET, steps)[StrategicallyTimed.name]
        summary = measure(agent, factory, seeds)
        row = {"attack": StrategicallyTimed.name, "budget": TIMED_BUDGET, "max_attacked_steps": steps}
        rows["by_attacked_steps"].append({**row, **summary.as_dict()})
        if progress is not None:
            progress(f"timed {steps} steps: {summary.mean:.1f} (share {summary.attacked_share:.3f})")
    return rows

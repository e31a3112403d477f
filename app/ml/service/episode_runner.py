"""Runs an :class:`EpisodeJob` on the model worker: the agent, its replica and the attack from app/ml/agents, the
result as the plain :class:`EpisodeResult` of app/ml/service/episode_contracts.py (issue #19).

The agents are loaded once, on the worker thread, the first time a job names them (``models/<agent>.safetensors``
and the replica its card names). A job with ``steps`` (the player's picks) attacks exactly those steps with the
attack's own perturbation: for ``timed``, the strategically-timed attack's FGSM step toward the action the agent likes
least, without its threshold, so the player and the heuristic differ only in which moments they pick.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from app.errors import ServiceUnavailable
from app.ml.agents.attacks import (
    FgsmEveryStep,
    ObservationAttack,
    Perturbation,
    PolicyInduction,
    StrategicallyTimed,
    fgsm_perturbation,
    least_preferred,
)
from app.ml.agents.card import read_agent_card
from app.ml.agents.environment import normalise_batch
from app.ml.agents.episodes import Episode, run_episode
from app.ml.agents.net import QNetwork, load_agent
from app.ml.service.episode_contracts import EpisodeJob, EpisodeResult

# The agent whose card names no replica (it is itself one, or an older card) is attacked through this one.
DEFAULT_REPLICA = "cartpole-dqn-replica"


class ChosenSteps(ObservationAttack):
    """Perturb exactly the given steps of an episode (0-based), each with ``perturb_one``, and no others."""

    name = "chosen"

    def __init__(self, budget: float, steps: tuple[int, ...], perturb_one: Callable[[torch.Tensor], Perturbation]):
        super().__init__(budget)
        self.steps = frozenset(steps)
        self.perturb_one = perturb_one
        self.step = 0

    def reset(self) -> None:
        self.step = 0

    def perturb(self, observation: torch.Tensor) -> Perturbation | None:
        step, self.step = self.step, self.step + 1
        return self.perturb_one(observation) if step in self.steps else None


def toward_least_preferred(agent: QNetwork, budget: float) -> Callable[[torch.Tensor], Perturbation]:
    """The strategically-timed attack's perturbation of one step (app/ml/agents/attacks.StrategicallyTimed)."""

    def perturb(observation: torch.Tensor) -> Perturbation:
        delta, target = fgsm_perturbation(agent, observation, budget, least_preferred, toward=True)
        return Perturbation(delta, target_action=target)

    return perturb


def build_attack(job: EpisodeJob, agent: QNetwork, replica: QNetwork) -> ObservationAttack | None:
    if job.attack == "none":
        return None
    if job.attack == "fgsm":
        single: ObservationAttack = FgsmEveryStep(agent, job.budget)
    elif job.attack == "induction":
        single = PolicyInduction(replica, job.budget)
    else:
        if job.steps is None:
            return StrategicallyTimed(agent, job.budget, job.threshold, job.max_attacked_steps)
        return ChosenSteps(job.budget, job.steps, toward_least_preferred(agent, job.budget))
    if job.steps is None:
        return single
    return ChosenSteps(job.budget, job.steps, single.perturb)  # type: ignore[arg-type]


def preferences(q_values: np.ndarray) -> np.ndarray:
    """Lin et al.'s c(s) per step: the largest minus the smallest softmax of the Q-values, float32."""
    if len(q_values) == 0:
        return np.zeros(0, dtype=np.float32)
    shifted = np.exp(q_values - q_values.max(axis=1, keepdims=True))
    policy = shifted / shifted.sum(axis=1, keepdims=True)
    return (policy.max(axis=1) - policy.min(axis=1)).astype(np.float32)


def to_result(job: EpisodeJob, episode: Episode, agent: QNetwork, elapsed_ms: float) -> EpisodeResult:
    """The record as the contract's arrays; the preferences are the agent's on the true state of each step (what
    the strategically-timed attack reads to pick its moments), one batched forward pass."""
    steps = episode.steps
    states = np.array([step.state for step in steps] + [episode.final_state], dtype=np.float32).reshape(-1, 4)
    with torch.no_grad():
        q_values = agent(normalise_batch(states[:-1])).numpy().astype(np.float32)
    return EpisodeResult(
        agent=job.agent,
        attack=job.attack,
        budget=float(job.budget),
        seed=job.seed,
        states=states,
        actions=np.array([step.action for step in steps], dtype=np.int64),
        perturbations=np.array([step.perturbation for step in steps], dtype=np.float32).reshape(-1, 4),
        preferences=preferences(q_values),
        attacked_steps=tuple(index for index, step in enumerate(steps) if step.attacked),
        total_return=episode.total_return,
        terminated=episode.terminated,
        elapsed_ms=elapsed_ms,
    )


class EpisodeRunner:
    """The agents of one model service and the episodes they play. ``run`` is called on the worker thread."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)
        self._agents: dict[str, tuple[QNetwork, QNetwork]] = {}
        self._loading = threading.Lock()

    def agents(self, name: str) -> tuple[QNetwork, QNetwork]:
        with self._loading:
            if name not in self._agents:
                path = self.models_dir / f"{name}.safetensors"
                if not name.replace("-", "").isalnum() or not path.is_file():
                    raise ServiceUnavailable(f"agent {name!r} is not available in the model service")
                try:
                    replica_name = read_agent_card(self.models_dir, name)["attacks"]["replica"]
                except (OSError, ValueError, KeyError, TypeError):
                    replica_name = DEFAULT_REPLICA
                replica_path = self.models_dir / f"{replica_name}.safetensors"
                agent = load_agent(path)
                self._agents[name] = (agent, load_agent(replica_path) if replica_path.is_file() else agent)
            return self._agents[name]

    def run(self, job: EpisodeJob) -> EpisodeResult:
        started = time.perf_counter()
        agent, replica = self.agents(job.agent)
        episode = run_episode(agent, job.seed, build_attack(job, agent, replica), max_steps=job.max_steps)
        return to_result(job, episode, agent, (time.perf_counter() - started) * 1000)

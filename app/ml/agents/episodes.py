"""Seeded episodes of an agent, clean or under an observation attack, recorded step by step.

An episode is fixed by its seed: gymnasium's CartPole draws its start state from ``reset(seed=...)`` and is
deterministic afterwards; the agent is greedy and the attacks are deterministic, so the same seed, agent and attack
give the identical record. Each step keeps the true state (as float32 values, which JSON carries exactly), the
action, the agent's Q-values on what it saw, whether it was attacked, the perturbation of the normalised state, and
the adversary's target action where the attack has one. :func:`replay_states` steps a fresh environment through the
recorded actions, which must reproduce the recorded states bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from app.ml.agents.attacks import ObservationAttack
from app.ml.agents.environment import MAX_EPISODE_STEPS, make_environment, normalise
from app.ml.agents.net import QNetwork


@dataclass(frozen=True)
class Step:
    state: tuple[float, ...]
    action: int
    q_values: tuple[float, ...]
    attacked: bool
    perturbation: tuple[float, ...]
    target_action: int | None = None


@dataclass
class Episode:
    seed: int
    attack: dict[str, Any] | None
    steps: list[Step] = field(default_factory=list)
    final_state: tuple[float, ...] = ()
    terminated: bool = False

    @property
    def total_return(self) -> int:
        """CartPole pays 1 per step survived, so the return is the number of steps."""
        return len(self.steps)

    @property
    def attacked_steps(self) -> int:
        return sum(step.attacked for step in self.steps)

    @property
    def attacked_share(self) -> float:
        return self.attacked_steps / len(self.steps) if self.steps else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "attack": self.attack,
            "return": self.total_return,
            "attacked_steps": self.attacked_steps,
            "terminated": self.terminated,
            "final_state": list(self.final_state),
            "steps": [
                {
                    "state": list(step.state),
                    "action": step.action,
                    "q_values": list(step.q_values),
                    "attacked": step.attacked,
                    "perturbation": list(step.perturbation),
                    "target_action": step.target_action,
                }
                for step in self.steps
            ],
        }

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Episode:
        """The episode as :meth:`to_dict` wrote it (after a trip through JSON, which keeps float32 values exact)."""
        steps = [
            Step(
                state=tuple(step["state"]),
                action=step["action"],
                q_values=tuple(step["q_values"]),
                attacked=step["attacked"],
                perturbation=tuple(step["perturbation"]),
                target_action=step["target_action"],
            )
            for step in stored["steps"]
        ]
        return cls(stored["seed"], stored["attack"], steps, tuple(stored["final_state"]), stored["terminated"])


def _floats(values: np.ndarray | torch.Tensor) -> tuple[float, ...]:
    return tuple(float(value) for value in np.asarray(values, dtype=np.float32))


def greedy_action(agent: QNetwork, observation: torch.Tensor) -> tuple[int, torch.Tensor]:
    with torch.no_grad():
        q_values = agent(observation.unsqueeze(0))[0]
    return int(torch.argmax(q_values)), q_values


def run_episode(
    agent: QNetwork, seed: int, attack: ObservationAttack | None = None, max_steps: int = MAX_EPISODE_STEPS
) -> Episode:
    """One greedy episode from ``seed``; the attack (if any) perturbs what the agent sees, never the cart."""
    env = make_environment()
    state, _ = env.reset(seed=seed)
    episode = Episode(seed=seed, attack=attack.describe() if attack else None)
    if attack is not None:
        attack.reset()
    no_perturbation = (0.0,) * len(state)
    for _ in range(max_steps):
        observation = normalise(state)
        perturbation = attack.perturb(observation) if attack is not None else None
        seen = observation if perturbation is None else observation + perturbation.delta
        action, q_values = greedy_action(agent, seen)
        episode.steps.append(
            Step(
                state=_floats(state),
                action=action,
                q_values=_floats(q_values),
                attacked=perturbation is not None,
                perturbation=no_perturbation if perturbation is None else _floats(perturbation.delta),
                target_action=None if perturbation is None else perturbation.target_action,
            )
        )
        state, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            episode.terminated = bool(terminated)
            break
    episode.final_state = _floats(state)
    env.close()
    return episode


def replay_states(seed: int, actions: list[int]) -> list[tuple[float, ...]]:
    """The states a fresh environment passes through from ``seed`` under ``actions``, final state included."""
    env = make_environment()
    state, _ = env.reset(seed=seed)
    states = [_floats(state)]
    for action in actions:
        state, *_ = env.step(action)
        states.append(_floats(state))
    env.close()
    return states

"""Three attacks on what the agent observes; each perturbs the normalised state within an L∞ budget.

- :class:`FgsmEveryStep` (Huang et al. 2017, "Adversarial attacks on neural network policies"): at every step,
  one FGSM step on the agent's own Q-values (as logits) away from the action it prefers.
- :class:`StrategicallyTimed` (Lin et al. 2017, "Tactics of adversarial attack on deep reinforcement learning
  agents"): attack only where the agent's preference between its actions (the gap between the largest and the
  smallest softmax of its Q-values) reaches a threshold, for at most a given number of steps per episode, each
  time pushing the agent toward the action it likes least.
- :class:`PolicyInduction` (Behzadan & Munir 2017, "Vulnerability of deep reinforcement learning to policy
  induction attacks"): a black-box attack. The adversary picks the action it wants (the one its replica values
  least, or a fixed action) and crafts the FGSM step on the replica; only the perturbation reaches the agent.

The gradient is taken with respect to the observation only (``torch.autograd.grad``), so no ``.grad`` of a
network is touched and nothing of autograd leaks out.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional

TARGET_LEAST_VALUED = "least-valued"


@dataclass(frozen=True)
class Perturbation:
    delta: torch.Tensor
    target_action: int | None = None


def fgsm_perturbation(
    model: nn.Module,
    observation: torch.Tensor,
    budget: float,
    choose_action: Callable[[torch.Tensor], int],
    toward: bool,
) -> tuple[torch.Tensor, int]:
    """One signed-gradient step of size ``budget`` on the cross-entropy of ``model``'s Q-values (as logits) for the
    action ``choose_action`` picks from those Q-values: toward it (descending the loss) or away (ascending).
    Returns the perturbation and the action; one forward and one backward pass."""
    with torch.enable_grad():
        seen = observation.detach().clone().requires_grad_(True)
        q_values = model(seen.unsqueeze(0))[0]
        action = choose_action(q_values.detach())
        loss = -functional.log_softmax(q_values, dim=0)[action]
        (gradient,) = torch.autograd.grad(loss, seen)
    direction = -gradient.sign() if toward else gradient.sign()
    return budget * direction, action


def preferred(q_values: torch.Tensor) -> int:
    return int(q_values.argmax())


def least_preferred(q_values: torch.Tensor) -> int:
    return int(q_values.argmin())


def action_preference(model: nn.Module, observation: torch.Tensor) -> float:
    """Lin et al.'s c(s): the largest minus the smallest softmax of the model's Q-values."""
    with torch.no_grad():
        policy = torch.softmax(model(observation.unsqueeze(0))[0], dim=0)
    return float(policy.max() - policy.min())


class ObservationAttack(ABC):
    """Decides, step by step, whether to perturb the agent's observation, and by how much."""

    name: str

    def __init__(self, budget: float) -> None:
        if budget < 0:
            raise ValueError(f"budget must be >= 0, got {budget}")
        self.budget = budget

    def reset(self) -> None:  # noqa: B027  (most attacks keep no state between steps)
        """Called at the start of each episode."""

    @abstractmethod
    def perturb(self, observation: torch.Tensor) -> Perturbation | None:
        """The perturbation of this step's normalised observation, or None to leave it alone."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "budget": self.budget}


class FgsmEveryStep(ObservationAttack):
    name = "fgsm"

    def __init__(self, agent: nn.Module, budget: float) -> None:
        super().__init__(budget)
        self.agent = agent

    def perturb(self, observation: torch.Tensor) -> Perturbation:
        delta, _ = fgsm_perturbation(self.agent, observation, self.budget, preferred, toward=False)
        return Perturbation(delta)


class StrategicallyTimed(ObservationAttack):
    name = "timed"

    def __init__(self, agent: nn.Module, budget: float, threshold: float, max_attacked_steps: int) -> None:
        super().__init__(budget)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        if max_attacked_steps < 0:
            raise ValueError(f"max_attacked_steps must be >= 0, got {max_attacked_steps}")
        self.agent = agent
        self.threshold = threshold
        self.max_attacked_steps = max_attacked_steps
        self.attacked_steps = 0

    def reset(self) -> None:
        self.attacked_steps = 0

    def perturb(self, observation: torch.Tensor) -> Perturbation | None:
        if self.attacked_steps >= self.max_attacked_steps:
            return None
        if action_preference(self.agent, observation) < self.threshold:
            return None
        self.attacked_steps += 1
        delta, target = fgsm_perturbation(self.agent, observation, self.budget, least_preferred, toward=True)
        return Perturbation(delta, target_action=target)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "threshold": self.threshold, "max_attacked_steps": self.max_attacked_steps}


class PolicyInduction(ObservationAttack):
    """``target`` is :data:`TARGET_LEAST_VALUED` (the action the replica values least: the adversary's policy is to
    topple the pole) or a fixed action index."""

    name = "induction"

    def __init__(self, replica: nn.Module, budget: float, target: str | int = TARGET_LEAST_VALUED) -> None:
        super().__init__(budget)
        if target != TARGET_LEAST_VALUED and not isinstance(target, int):
            raise ValueError(f"target must be {TARGET_LEAST_VALUED!r} or an action index, got {target!r}")
        self.replica = replica
        self.target = target

    def adversary_action(self, replica_q_values: torch.Tensor) -> int:
        return self.target if isinstance(self.target, int) else least_preferred(replica_q_values)

    def perturb(self, observation: torch.Tensor) -> Perturbation:
        delta, target = fgsm_perturbation(self.replica, observation, self.budget, self.adversary_action, toward=True)
        return Perturbation(delta, target_action=target)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "target": self.target}

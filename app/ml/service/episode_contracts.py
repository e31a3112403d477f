"""What the policy lab and the pick-the-moments game ask of the model service, and get back (issue #19). Plain
Python and numpy, no torch, like app/ml/service/explain_contracts.py: the web tier builds an :class:`EpisodeJob` and
draws the :class:`EpisodeResult` (the cart and the pole, step by step) without importing torch. The episode itself
runs in app/ml/service/episode_runner.py on the model worker.

An episode is fixed by its job: CartPole's start state comes from the seed, the agent is greedy and the attacks are
deterministic, so the same job gives the same states bit for bit, in-process or across the wire (float32 arrays
travel as their raw bytes)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from app.ml.service.wire import WireError, from_wire, to_wire

ATTACKS = ("none", "fgsm", "timed", "induction")
DEFAULT_AGENT = "cartpole-dqn"
MAX_STEPS = 500  # CartPole-v1's time limit
MAX_BUDGET = 1.0  # L∞ on the normalised state: 1.0 moves a coordinate by its whole scale
MAX_ATTACKED_STEPS = 100
DEFAULT_THRESHOLD = 0.6  # the strategically-timed attack's softmax gap (app/ml/agents/evaluation.TIMED_THRESHOLD)
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class EpisodeJob:
    """One seeded episode of ``agent``, clean (``attack="none"``) or under one observation attack with L∞ ``budget``
    on the normalised state.

    ``max_attacked_steps`` (K) caps the steps the strategically-timed attack may perturb. ``steps``, when given, are
    the player's picks: the attack perturbs exactly those steps (0-based, at most K of them) and no others, the way
    it would perturb a step it chose itself (``timed``: toward the action the agent likes least)."""

    agent: str = DEFAULT_AGENT
    attack: str = "none"
    budget: float = 0.0
    seed: int = 0
    max_attacked_steps: int = 10
    steps: tuple[int, ...] | None = None
    threshold: float = DEFAULT_THRESHOLD
    max_steps: int = MAX_STEPS
    # Who asks (a player id, as ImageJob.client): one episode per client runs or waits at a time.
    client: str = field(default="", compare=False)
    # Whose turns the episode takes in the lane (as ImageJob.share): the game's key is one per client address, so
    # that one address with many players takes one share. "" means the client's own.
    share: str = field(default="", compare=False)

    @property
    def lane(self) -> str:
        """The episode lane's turn this job waits for."""
        return self.share or self.client

    def validate(self) -> None:
        """Raise ValueError with the fix when the job cannot be run."""
        if not isinstance(self.agent, str) or not self.agent:
            raise ValueError("EpisodeJob.agent must name an agent")
        if self.attack not in ATTACKS:
            raise ValueError(f"EpisodeJob.attack must be one of {', '.join(ATTACKS)}, got {self.attack!r}")
        if isinstance(self.budget, bool) or not isinstance(self.budget, int | float):
            raise ValueError("EpisodeJob.budget must be a number")
        if not 0.0 <= self.budget <= MAX_BUDGET:
            raise ValueError(f"EpisodeJob.budget must lie in [0, {MAX_BUDGET}], got {self.budget!r}")
        integers = (("seed", 0, MAX_SEED), ("max_attacked_steps", 0, MAX_ATTACKED_STEPS), ("max_steps", 1, MAX_STEPS))
        for name, low, high in integers:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"EpisodeJob.{name} must be an integer in {low}..{high}, got {value!r}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
            raise ValueError("EpisodeJob.threshold must be a number")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"EpisodeJob.threshold must lie in [0, 1], got {self.threshold!r}")
        if not isinstance(self.client, str) or not isinstance(self.share, str):
            raise ValueError("EpisodeJob.client and EpisodeJob.share must be strings")
        if self.steps is not None:
            self.validate_steps(self.steps)

    def validate_steps(self, steps: tuple[int, ...]) -> None:
        if self.attack == "none":
            raise ValueError("EpisodeJob.steps need an attack to apply at those steps")
        if not all(isinstance(step, int) and not isinstance(step, bool) for step in steps):
            raise ValueError("EpisodeJob.steps must be integers")
        if list(steps) != sorted(set(steps)):
            raise ValueError("EpisodeJob.steps must be distinct and in increasing order")
        if steps and not 0 <= steps[0] <= steps[-1] < self.max_steps:
            raise ValueError(f"EpisodeJob.steps must lie in 0..{self.max_steps - 1}")
        if len(steps) > self.max_attacked_steps:
            raise ValueError(f"at most {self.max_attacked_steps} steps may be attacked, got {len(steps)}")


@dataclass(frozen=True)
class EpisodeResult:
    """One recorded episode. ``states`` is (n+1, 4) float32: the true state before each of the n steps, then the
    final one (cart position, cart velocity, pole angle, pole angular velocity, raw units). ``actions`` (n,) int64:
    0 pushes left, 1 right. ``perturbations`` (n, 4) float32: what the attack added to the normalised state the
    agent saw (zeros where it did not attack). ``preferences`` (n,) float32: the agent's preference between its
    actions on the true state of each step (Lin et al.'s c(s), the largest minus the smallest softmax of its
    Q-values: what the strategically-timed attack reads to pick its moments).
    ``attacked_steps`` lists the steps perturbed; ``total_return`` is n (CartPole pays 1 a step); ``terminated`` is
    True when the pole fell or the cart left the track (False: the time limit)."""

    agent: str
    attack: str
    budget: float
    seed: int
    states: np.ndarray
    actions: np.ndarray
    perturbations: np.ndarray
    preferences: np.ndarray
    attacked_steps: tuple[int, ...]
    total_return: int
    terminated: bool
    elapsed_ms: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """What a browser draws: plain lists (float32 values widen to float64 exactly)."""
        return {
            "agent": self.agent,
            "attack": self.attack,
            "budget": self.budget,
            "seed": self.seed,
            "return": self.total_return,
            "terminated": self.terminated,
            "attacked_steps": list(self.attacked_steps),
            "states": self.states.astype(np.float64).tolist(),
            "actions": self.actions.tolist(),
            "perturbations": self.perturbations.astype(np.float64).tolist(),
            "preferences": self.preferences.astype(np.float64).tolist(),
        }


@runtime_checkable
class EpisodeService(Protocol):
    """A model service that runs episodes (in-process, remote, Ray): the game checks for it with isinstance."""

    async def run_episode(self, job: EpisodeJob) -> EpisodeResult: ...


# -- wire format (app/modelsvc: POST /v1/episodes) ------------------------------------------------------------------
# The generic codec of app/ml/service/wire.py: fields by name, arrays as {"__ndarray__": ...} (float32, int64).


def episode_job_to_wire(job: EpisodeJob) -> dict[str, Any]:
    return to_wire(job)


def episode_job_from_wire(data: Any) -> EpisodeJob:
    job = from_wire(EpisodeJob, data)
    steps: Any = job.steps
    if isinstance(steps, list):  # an optional tuple arrives as a list (the codec freezes only plain tuples)
        job = dataclasses.replace(job, steps=tuple(steps))
    try:
        job.validate()
    except ValueError as error:
        raise WireError(str(error)) from None
    return job


def episode_result_to_wire(result: EpisodeResult) -> dict[str, Any]:
    return to_wire(result)


def episode_result_from_wire(data: Any) -> EpisodeResult:
    result = from_wire(EpisodeResult, data)
    arrays = (result.states, result.actions, result.perturbations, result.preferences)
    if not all(isinstance(array, np.ndarray) for array in arrays):
        raise WireError("an EpisodeResult needs its states, actions, perturbations and preferences as arrays")
    steps = len(result.actions)
    if result.states.shape != (steps + 1, 4) or result.perturbations.shape != (steps, 4):
        raise WireError("an EpisodeResult's states and perturbations do not match its actions")
    if result.preferences.shape != (steps,) or result.total_return != steps:
        raise WireError("an EpisodeResult's preferences or return do not match its actions")
    return result

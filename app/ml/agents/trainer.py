"""A seeded DQN trainer (Mnih et al. 2015, with Double-DQN targets, van Hasselt et al. 2016).

Deterministic from its seed on the CPU: torch's generator initialises the network, one numpy generator draws the
exploration, the replay batches and each training episode's environment seed, and everything runs on one thread in
a fixed order. The checkpoint kept is the one with the best greedy return on a few selection episodes (seeds apart
from the card's), checked at fixed intervals; training stops early once a check survives every selection episode.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch.nn import functional

from app.ml.agents.environment import make_environment, normalise, normalise_batch
from app.ml.agents.episodes import run_episode
from app.ml.agents.net import QNetwork

SELECTION_SEEDS = tuple(range(500, 520))


@dataclass(frozen=True)
class DqnSettings:
    total_steps: int = 60_000
    learning_starts: int = 1_000
    buffer_size: int = 50_000
    batch_size: int = 64
    gamma: float = 0.99
    learning_rate: float = 5e-4
    target_update_every: int = 500
    epsilon_start: float = 1.0
    epsilon_end: float = 0.02
    epsilon_decay_steps: int = 15_000
    gradient_clip: float = 10.0
    check_every: int = 2_500
    hidden_sizes: tuple[int, ...] = (128, 128)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "hidden_sizes": list(self.hidden_sizes)}


@dataclass(frozen=True)
class SelectionCheck:
    step: int
    mean_return: float
    elapsed_s: float


@dataclass
class TrainingResult:
    agent: QNetwork
    seed: int
    settings: DqnSettings
    checks: list[SelectionCheck] = field(default_factory=list)
    selected_step: int = 0
    steps_run: int = 0
    episodes_run: int = 0
    wall_time_s: float = 0.0


class ReplayBuffer:
    """A ring of transitions in preallocated arrays, sampled uniformly with the trainer's generator."""

    def __init__(self, capacity: int, state_size: int) -> None:
        self.states = np.zeros((capacity, state_size), dtype=np.float32)
        self.next_states = np.zeros((capacity, state_size), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.ends = np.zeros(capacity, dtype=np.float32)
        self.capacity = capacity
        self.size = 0
        self.position = 0

    def add(self, state: np.ndarray, action: int, reward: float, next_state: np.ndarray, terminated: bool) -> None:
        index = self.position
        self.states[index], self.actions[index], self.rewards[index] = state, action, reward
        self.next_states[index], self.ends[index] = next_state, float(terminated)
        self.position = (index + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        indices = rng.integers(0, self.size, size=batch_size)
        return (
            normalise_batch(self.states[indices]),
            torch.from_numpy(self.actions[indices]),
            torch.from_numpy(self.rewards[indices]),
            normalise_batch(self.next_states[indices]),
            torch.from_numpy(self.ends[indices]),
        )


def selection_return(agent: QNetwork) -> float:
    return float(np.mean([run_episode(agent, seed).total_return for seed in SELECTION_SEEDS]))


def _td_loss(online: QNetwork, target: QNetwork, batch: tuple[torch.Tensor, ...], gamma: float) -> torch.Tensor:
    states, actions, rewards, next_states, ends = batch
    with torch.no_grad():
        next_actions = online(next_states).argmax(dim=1, keepdim=True)
        next_values = target(next_states).gather(1, next_actions).squeeze(1)
        targets = rewards + gamma * (1.0 - ends) * next_values
    values = online(states).gather(1, actions.unsqueeze(1)).squeeze(1)
    return functional.smooth_l1_loss(values, targets)


def train_dqn(
    seed: int, settings: DqnSettings = DqnSettings(), progress: Callable[[str], None] | None = None
) -> TrainingResult:
    """Train from ``seed``; bootstrap only through steps that did not end the episode by termination (the time
    limit is not a terminal state)."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    online = QNetwork(settings.hidden_sizes)
    target = copy.deepcopy(online)
    optimiser = torch.optim.Adam(online.parameters(), lr=settings.learning_rate)
    buffer = ReplayBuffer(settings.buffer_size, 4)
    result = TrainingResult(agent=copy.deepcopy(online), seed=seed, settings=settings)
    best_return = -1.0
    env = make_environment()
    state, _ = env.reset(seed=int(rng.integers(2**31)))
    result.episodes_run = 1
    for step in range(1, settings.total_steps + 1):
        fraction = min(1.0, step / settings.epsilon_decay_steps)
        epsilon = settings.epsilon_start + fraction * (settings.epsilon_end - settings.epsilon_start)
        if rng.random() < epsilon:
            action = int(rng.integers(2))
        else:
            with torch.no_grad():
                action = int(online(normalise(state).unsqueeze(0))[0].argmax())
        next_state, reward, terminated, truncated, _ = env.step(action)
        buffer.add(state, action, float(reward), next_state, terminated)
        state = next_state
        if terminated or truncated:
            state, _ = env.reset(seed=int(rng.integers(2**31)))
            result.episodes_run += 1
        if step >= settings.learning_starts:
            loss = _td_loss(online, target, buffer.sample(rng, settings.batch_size), settings.gamma)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(online.parameters(), settings.gradient_clip)
            optimiser.step()
        if step % settings.target_update_every == 0:
            target.load_state_dict(online.state_dict())
        if step % settings.check_every == 0 and step >= settings.learning_starts:
            online.eval()
            mean_return = selection_return(online)
            online.train()
            result.checks.append(SelectionCheck(step, mean_return, round(time.perf_counter() - started, 1)))
            if progress is not None:
                progress(f"seed {seed} step {step}: selection return {mean_return:.1f}")
            if mean_return > best_return:
                best_return = mean_return
                result.agent = copy.deepcopy(online)
                result.selected_step = step
            if mean_return >= 500:
                result.steps_run = step
                break
        result.steps_run = step
    env.close()
    result.agent.eval()
    for parameter in result.agent.parameters():
        parameter.requires_grad_(False)
    result.wall_time_s = time.perf_counter() - started
    return result

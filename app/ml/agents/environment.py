"""CartPole-v1 from gymnasium, and the normalised state the agent sees and the attacks perturb.

The budget of every attack is an L∞ radius on the normalised state: each coordinate of the raw state is divided
by a fixed scale (the termination thresholds for the cart position and the pole angle, typical magnitudes for the
two velocities), so a budget of 0.1 moves each coordinate by a tenth of its scale and means the same for all four.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import torch

ENVIRONMENT_ID = "CartPole-v1"
MAX_EPISODE_STEPS = 500
STATE_NAMES = ("cart position", "cart velocity", "pole angle", "pole angular velocity")
# Cart position and pole angle: the thresholds where the episode ends (2.4 m, 12 degrees); the velocities: about
# the largest magnitudes a balancing policy reaches.
STATE_SCALE = (2.4, 3.0, 0.2095, 3.5)
ACTION_NAMES = ("push left", "push right")

_SCALE = torch.tensor(STATE_SCALE, dtype=torch.float32)


def make_environment() -> gymnasium.Env:
    """A fresh CartPole-v1 (time limit 500 steps); episodes are seeded through ``reset(seed=...)``."""
    return gymnasium.make(ENVIRONMENT_ID)


def normalise(state: np.ndarray) -> torch.Tensor:
    """The raw float32 state as the agent's input: each coordinate divided by its scale."""
    return torch.from_numpy(np.asarray(state, dtype=np.float32)) / _SCALE


def normalise_batch(states: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(states, dtype=np.float32)) / _SCALE

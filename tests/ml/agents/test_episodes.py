"""Seeded episodes: the same seed gives the identical record, and the record replays bit for bit."""

from __future__ import annotations

import json

import torch

from app.ml.agents.attacks import FgsmEveryStep
from app.ml.agents.episodes import Episode, replay_states, run_episode
from app.ml.agents.trainer import DqnSettings, train_dqn


def test_the_same_seed_gives_the_identical_episode(agent) -> None:
    assert run_episode(agent, 7) == run_episode(agent, 7)
    attacked = [run_episode(agent, 7, FgsmEveryStep(agent, 0.2)) for _ in range(2)]
    assert attacked[0] == attacked[1]
    assert attacked[0].attacked_steps == attacked[0].total_return > 0


def test_other_seeds_start_elsewhere(agent) -> None:
    assert run_episode(agent, 1, max_steps=5).steps[0].state != run_episode(agent, 2, max_steps=5).steps[0].state


def test_a_recorded_episode_replays_bit_for_bit(agent) -> None:
    episode = run_episode(agent, 3, FgsmEveryStep(agent, 0.1))
    stored = json.loads(json.dumps(episode.to_dict()))
    states = replay_states(stored["seed"], [step["action"] for step in stored["steps"]])
    assert states == [tuple(step["state"]) for step in stored["steps"]] + [tuple(stored["final_state"])]
    assert [tuple(step["state"]) for step in stored["steps"]] == [step.state for step in episode.steps]
    assert stored["return"] == episode.total_return
    assert Episode.from_dict(stored) == episode


def test_the_trainer_is_deterministic_from_its_seed() -> None:
    settings = DqnSettings(total_steps=400, learning_starts=100, check_every=400, epsilon_decay_steps=400)
    first, again, other = (train_dqn(seed, settings) for seed in (5, 5, 6))
    for name, tensor in first.agent.state_dict().items():
        assert torch.equal(tensor, again.agent.state_dict()[name]), name
    assert [check.mean_return for check in first.checks] == [check.mean_return for check in again.checks]
    assert (first.selected_step, first.episodes_run) == (again.selected_step, again.episodes_run)
    assert not all(
        torch.equal(tensor, other.agent.state_dict()[name]) for name, tensor in first.agent.state_dict().items()
    )

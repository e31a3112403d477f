"""The three observation attacks: harmless at budget 0, harmful at a large one, and each within its rules."""

from __future__ import annotations

import pytest
import torch

from app.ml.agents.attacks import (
    FgsmEveryStep,
    PolicyInduction,
    StrategicallyTimed,
    fgsm_perturbation,
    least_preferred,
)
from app.ml.agents.environment import normalise
from app.ml.agents.episodes import run_episode

SEEDS = (1000, 1001)


def make_attacks(agent, replica, budget: float) -> dict[str, object]:
    return {
        "fgsm": lambda: FgsmEveryStep(agent, budget),
        "timed": lambda: StrategicallyTimed(agent, budget, threshold=0.6, max_attacked_steps=10),
        "induction": lambda: PolicyInduction(replica, budget),
    }


@pytest.mark.parametrize("name", ["fgsm", "timed", "induction"])
def test_an_attack_at_budget_zero_changes_nothing(agent, replica, name) -> None:
    clean = run_episode(agent, SEEDS[0])
    attacked = run_episode(agent, SEEDS[0], make_attacks(agent, replica, 0.0)[name]())
    assert [step.state for step in attacked.steps] == [step.state for step in clean.steps]
    assert [step.action for step in attacked.steps] == [step.action for step in clean.steps]
    assert all(not any(step.perturbation) for step in attacked.steps)


@pytest.mark.parametrize(("name", "budget"), [("fgsm", 0.3), ("timed", 0.2), ("induction", 0.1)])
def test_an_attack_at_a_large_budget_lowers_the_return(agent, replica, name, budget) -> None:
    clean = [run_episode(agent, seed).total_return for seed in SEEDS]
    attacked = [run_episode(agent, seed, make_attacks(agent, replica, budget)[name]()) for seed in SEEDS]
    assert sum(episode.total_return for episode in attacked) < sum(clean) / 2
    for episode in attacked:
        attacked_steps = [step for step in episode.steps if step.attacked]
        assert attacked_steps
        assert all(max(abs(value) for value in step.perturbation) <= budget + 1e-7 for step in attacked_steps)


@pytest.mark.parametrize(("threshold", "max_steps"), [(0.0, 0), (0.0, 1), (0.0, 7), (0.6, 2), (0.6, 10)])
def test_the_timed_attack_never_exceeds_its_step_count(agent, threshold, max_steps) -> None:
    episode = run_episode(agent, 1002, StrategicallyTimed(agent, 0.2, threshold, max_steps), max_steps=120)
    assert episode.attacked_steps <= max_steps
    if threshold == 0.0:
        assert episode.attacked_steps == min(max_steps, episode.total_return)


def test_the_timed_attack_picks_only_steps_above_its_threshold(agent) -> None:
    episode = run_episode(agent, 1003, StrategicallyTimed(agent, 0.1, threshold=0.6, max_attacked_steps=500))
    for step in episode.steps:
        clean_policy = torch.softmax(agent(normalise(step.state).unsqueeze(0))[0], dim=0)
        preference = float(clean_policy.max() - clean_policy.min())
        assert step.attacked == (preference >= 0.6)


def test_policy_induction_crafts_on_the_replica_alone(agent, replica) -> None:
    """The agent is only ever run forward to act (no gradient, one pass per step); every perturbation is the FGSM
    step of the replica's gradient toward the replica's least-valued action."""
    agent_calls: list[bool] = []
    replica_calls: list[bool] = []
    hooks = [
        agent.register_forward_pre_hook(lambda module, args: agent_calls.append(torch.is_grad_enabled())),
        replica.register_forward_pre_hook(lambda module, args: replica_calls.append(torch.is_grad_enabled())),
    ]
    try:
        episode = run_episode(agent, 1004, PolicyInduction(replica, 0.1), max_steps=60)
    finally:
        for hook in hooks:
            hook.remove()
    assert agent_calls == [False] * episode.total_return
    assert replica_calls == [True] * episode.total_return
    assert all(parameter.grad is None for parameter in (*agent.parameters(), *replica.parameters()))
    for step in episode.steps:
        expected, target = fgsm_perturbation(replica, normalise(step.state), 0.1, least_preferred, toward=True)
        assert step.perturbation == tuple(float(value) for value in expected)
        assert step.target_action == target


def test_budgets_and_thresholds_are_checked(agent) -> None:
    with pytest.raises(ValueError, match="budget"):
        FgsmEveryStep(agent, -0.1)
    with pytest.raises(ValueError, match="threshold"):
        StrategicallyTimed(agent, 0.1, threshold=1.5, max_attacked_steps=3)
    with pytest.raises(ValueError, match="target"):
        PolicyInduction(agent, 0.1, target="left")

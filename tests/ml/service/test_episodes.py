"""Episodes in the model service (issue #19): the contract's checks, bit-for-bit determinism in-process, across the
wire and through the HTTP server and client, the player's chosen steps, and the bounded lane fair per client."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest

from app.errors import ServiceBusy, ServiceUnavailable
from app.ml.service.episode_contracts import (
    EpisodeJob,
    EpisodeResult,
    episode_job_from_wire,
    episode_job_to_wire,
    episode_result_from_wire,
    episode_result_to_wire,
)
from app.ml.service.episode_lane import EpisodeLane
from app.ml.service.episode_runner import EpisodeRunner
from app.ml.service.wire import WireError
from app.modelsvc.client import RemoteModelService
from app.modelsvc.server import create_server_app
from tests.fakes import FakeModelService
from tests.ml.conftest import StartModelService
from tests.modelsvc.test_remote_service import INFO, make_result

REPO_MODELS = Path(__file__).resolve().parents[3] / "models"


@pytest.fixture(scope="module")
def runner() -> EpisodeRunner:
    return EpisodeRunner(REPO_MODELS)


def assert_same(a: EpisodeResult, b: EpisodeResult) -> None:
    for name, value in vars(a).items():
        if name == "elapsed_ms":
            continue
        other = getattr(b, name)
        if isinstance(value, np.ndarray):
            assert value.dtype == other.dtype and value.shape == other.shape, name
            assert value.tobytes() == other.tobytes(), f"{name} differs in its bits"
        else:
            assert value == other, name


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"attack": "pgd"}, "attack"),
        ({"budget": 1.5}, "budget"),
        ({"seed": -1}, "seed"),
        ({"attack": "timed", "steps": (5, 3)}, "increasing"),
        ({"attack": "timed", "steps": (1, 2, 3), "max_attacked_steps": 2}, "at most 2"),
        ({"attack": "none", "steps": (1,)}, "need an attack"),
        ({"attack": "timed", "steps": (500,)}, "0..499"),
        ({"threshold": 2.0}, "threshold"),
    ],
)
def test_a_job_that_cannot_run_says_why(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        EpisodeJob(**changes).validate()  # type: ignore[arg-type]
    with pytest.raises(WireError, match=problem):
        episode_job_from_wire(json.loads(json.dumps(episode_job_to_wire(EpisodeJob(**changes)))))  # type: ignore[arg-type]


def test_the_same_job_gives_the_same_states_bit_for_bit_also_across_the_wire(runner: EpisodeRunner) -> None:
    job = EpisodeJob(attack="timed", budget=0.1, seed=1003, max_attacked_steps=10)
    first, second = runner.run(job), runner.run(job)
    assert_same(first, second)
    assert first.states.dtype == np.float32 and first.states.shape == (first.total_return + 1, 4)
    again = episode_result_from_wire(json.loads(json.dumps(episode_result_to_wire(first), allow_nan=False)))
    assert_same(first, again)
    back = episode_job_from_wire(json.loads(json.dumps(episode_job_to_wire(EpisodeJob(attack="timed", steps=(3, 9))))))
    assert back.steps == (3, 9) and back == EpisodeJob(attack="timed", steps=(3, 9))
    # the JSON a browser draws holds the same values
    assert np.array_equal(np.array(first.as_json()["states"], dtype=np.float32), first.states)


def test_clean_and_attacked_episodes_differ_as_the_attacks_say(runner: EpisodeRunner) -> None:
    clean = runner.run(EpisodeJob(seed=1000))
    assert clean.attack == "none" and clean.attacked_steps == () and not clean.perturbations.any()
    assert clean.total_return == 500 and not clean.terminated, "the committed agent balances seed 1000 to the limit"
    fgsm = runner.run(EpisodeJob(attack="fgsm", budget=0.2, seed=1000))
    assert fgsm.attacked_steps == tuple(range(fgsm.total_return)) and fgsm.terminated
    assert np.abs(fgsm.perturbations).max() == pytest.approx(0.2)
    timed = runner.run(EpisodeJob(attack="timed", budget=0.2, seed=1000, max_attacked_steps=3))
    assert 0 < len(timed.attacked_steps) <= 3 and timed.total_return < 500
    assert all(timed.preferences[step] >= 0.6 for step in timed.attacked_steps), "it attacks where the agent cares"
    induced = runner.run(EpisodeJob(attack="induction", budget=0.1, seed=1000))
    assert induced.total_return < 500 and len(induced.attacked_steps) == induced.total_return


def test_the_players_steps_are_attacked_and_no_others(runner: EpisodeRunner) -> None:
    picks = (0, 5, 6, 40)
    played = runner.run(EpisodeJob(attack="timed", budget=0.2, seed=1001, max_attacked_steps=4, steps=picks))
    assert played.attacked_steps == tuple(step for step in picks if step < played.total_return)
    unattacked = np.ones(played.total_return, dtype=bool)
    unattacked[list(played.attacked_steps)] = False
    assert not played.perturbations[unattacked].any()
    # before the first pick the episode is the clean one, bit for bit
    clean = runner.run(EpisodeJob(seed=1001))
    assert clean.states[0].tobytes() == played.states[0].tobytes()


def test_an_unknown_agent_is_unavailable_not_a_crash(runner: EpisodeRunner) -> None:
    with pytest.raises(ServiceUnavailable):
        runner.run(EpisodeJob(agent="../cartpole-dqn"))
    with pytest.raises(ServiceUnavailable):
        runner.run(EpisodeJob(agent="no-such-agent"))


class EpisodeFake(FakeModelService):
    def __init__(self, runner: EpisodeRunner) -> None:
        super().__init__(INFO, make_result)
        self.runner = runner

    async def run_episode(self, job: EpisodeJob) -> EpisodeResult:
        return await asyncio.to_thread(self.runner.run, job)


async def remote(service: FakeModelService) -> RemoteModelService:
    transport = httpx.ASGITransport(app=create_server_app(service))  # type: ignore[arg-type]
    client = RemoteModelService("http://modelsvc.test", transport=transport, probe_interval_s=0.01)
    await client.start()
    return client


@pytest.mark.anyio
async def test_the_client_runs_episodes_through_the_server_unchanged(runner: EpisodeRunner) -> None:
    client = await remote(EpisodeFake(runner))
    try:
        job = EpisodeJob(attack="induction", budget=0.1, seed=1002)
        assert_same(await client.run_episode(job), runner.run(job))
        bad = await client._client.post("/v1/episodes", json={**episode_job_to_wire(job), "attack": "pgd"})  # type: ignore[union-attr]
        assert bad.status_code == 422 and bad.json()["error"] == "invalid"
    finally:
        await client.stop()


@pytest.mark.anyio
async def test_a_backend_without_episodes_is_unsupported() -> None:
    client = await remote(FakeModelService(INFO, make_result))
    try:
        reply = await client._client.post("/v1/episodes", json=episode_job_to_wire(EpisodeJob()))  # type: ignore[union-attr]
        assert reply.status_code == 501 and reply.json()["error"] == "unsupported"
        with pytest.raises(ServiceUnavailable):
            await client.run_episode(EpisodeJob())
    finally:
        await client.stop()


@pytest.mark.anyio
async def test_the_ray_replica_runs_episodes_through_its_in_process_service(runner: EpisodeRunner) -> None:
    pytest.importorskip("ray", reason="the optional extra `ray` is not installed: pip install -e '.[ray]'")
    from app.modelsvc.ray_backend import ReplicaModelService

    inner = EpisodeFake(runner)
    replica = ReplicaModelService(SimpleNamespace(inner=inner, health=inner.health))  # type: ignore[arg-type]
    job = EpisodeJob(seed=1004, attack="fgsm", budget=0.1)
    assert_same(await replica.run_episode(job), runner.run(job))


def fake_result(job: EpisodeJob) -> EpisodeResult:
    return EpisodeResult(
        agent=job.agent,
        attack=job.attack,
        budget=job.budget,
        seed=job.seed,
        states=np.zeros((1, 4), np.float32),
        actions=np.zeros(0, np.int64),
        perturbations=np.zeros((0, 4), np.float32),
        preferences=np.zeros(0, np.float32),
        attacked_steps=(),
        total_return=0,
        terminated=True,
    )


def held_lane(*, capacity: int) -> tuple[EpisodeLane, asyncio.Event, list[str]]:
    """A lane whose episodes record their client, then wait for the gate: the test decides when the worker frees."""
    gate = asyncio.Event()
    order: list[str] = []

    async def compute(job: EpisodeJob) -> EpisodeResult:
        order.append(job.client)
        await gate.wait()
        return fake_result(job)

    return EpisodeLane(compute, capacity=capacity, timeout_s=5.0), gate, order


@pytest.mark.anyio
async def test_the_lane_is_bounded_takes_turns_and_holds_each_client_to_one_episode() -> None:
    lane, gate, order = held_lane(capacity=3)
    first = asyncio.create_task(lane.run(EpisodeJob(client="a")))
    await asyncio.sleep(0)
    with pytest.raises(ServiceBusy):  # a's second episode while its first is in the lane
        await lane.run(EpisodeJob(client="a", seed=1))
    others = [asyncio.create_task(lane.run(EpisodeJob(client=name))) for name in ("b", "c")]
    await asyncio.sleep(0)
    with pytest.raises(ServiceBusy):  # the lane is full
        await lane.run(EpisodeJob(client="d"))
    assert lane.refused == 2 and order == ["a"], "one episode at a time on the worker"
    gate.set()
    await asyncio.gather(first, *others)
    assert order == ["a", "b", "c"] and lane.admitted == 0 and lane.episodes_run == 3
    assert (await lane.run(EpisodeJob(client="a"))).seed == 0, "a may ask again once its episode is done"


@pytest.mark.anyio
async def test_a_caller_waiting_past_the_timeout_is_told_the_service_is_unavailable() -> None:
    async def never(job: EpisodeJob) -> EpisodeResult:
        await asyncio.Event().wait()
        raise AssertionError

    lane = EpisodeLane(never, timeout_s=0.05)
    with pytest.raises(ServiceUnavailable):
        await lane.run(EpisodeJob(client="a"))
    assert lane.admitted == 0


@pytest.mark.anyio
async def test_the_in_process_service_runs_episodes_on_its_worker_deterministically(
    model_service: StartModelService, runner: EpisodeRunner
) -> None:
    async with model_service("fashion-cnn", models_dir=REPO_MODELS) as service:
        job = EpisodeJob(attack="timed", budget=0.1, seed=1005, max_attacked_steps=10, client="p1")
        first, second = await asyncio.gather(service.run_episode(job), service.run_episode(job.__class__(seed=1005)))
        assert_same(first, runner.run(job))
        assert second.attack == "none" and second.states[0].tobytes() == first.states[0].tobytes()
        assert (await service.health())["episodes_run"] == 2
        with pytest.raises(ValueError, match="budget"):
            await service.run_episode(EpisodeJob(budget=-1.0))


@pytest.mark.anyio
async def test_players_behind_one_share_key_take_one_share_of_the_episode_lane() -> None:
    # Three players from one address (share "A") queue an episode each behind one of theirs on the worker; a player
    # from another address ("B") asks for one last. In arrival order it would wait for all three; taking turns by
    # share key, it runs next, the address's turn being the one that just ended.
    lane, gate, order = held_lane(capacity=8)
    first = asyncio.create_task(lane.run(EpisodeJob(client="a0", share="A")))
    await asyncio.sleep(0)
    flood = [asyncio.create_task(lane.run(EpisodeJob(client=f"a{k}", share="A"))) for k in (1, 2, 3)]
    await asyncio.sleep(0)
    honest = asyncio.create_task(lane.run(EpisodeJob(client="b", share="B")))
    await asyncio.sleep(0)
    assert order == ["a0"] and lane.admitted == 5
    gate.set()
    await asyncio.gather(first, *flood, honest)
    assert order == ["a0", "b", "a1", "a2", "a3"] and lane.admitted == 0 and lane.episodes_run == 5


@pytest.mark.anyio
async def test_a_caller_that_leaves_while_waiting_for_its_turn_passes_it_on() -> None:
    lane, gate, order = held_lane(capacity=8)
    first = asyncio.create_task(lane.run(EpisodeJob(client="a", share="A")))
    await asyncio.sleep(0)
    leaving = asyncio.create_task(lane.run(EpisodeJob(client="b", share="B")))
    staying = asyncio.create_task(lane.run(EpisodeJob(client="c", share="C")))
    await asyncio.sleep(0)
    leaving.cancel()
    gate.set()
    await asyncio.gather(first, staying)
    assert leaving.cancelled() and order == ["a", "c"] and lane.admitted == 0
    assert (await lane.run(EpisodeJob(client="b", share="B"))).seed == 0, "the lane is free again"

"""Pick the moments (issue 19): settings and picks checked, scored by margin against the heuristic, one unplayed
round per player and one result per round even when requests race (the database decides), and the heuristic's
moments kept from the page until the round is played. The episodes come from a fake that plays by simple rules,
so these run without torch on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from sqlalchemy import func, select

from app import messages
from app.db.session import open_database
from app.db.tables import PolicyRoundRecord
from app.errors import Conflict, Forbidden, Invalid, NotFound, ServiceUnavailable
from app.game import players, policy
from app.ml.service.episode_contracts import EpisodeJob, EpisodeResult

pytestmark = pytest.mark.anyio


class RuleEpisodes:
    """Episodes by rule: clean ones last ``clean`` steps; the heuristic's fall after ``heuristic`` steps, having
    attacked the first K steps from step 50; a player's pole falls 30 steps after their first pick."""

    def __init__(self, clean: int = 500, heuristic: int = 120, gate: asyncio.Event | None = None) -> None:
        self.clean, self.heuristic, self.gate = clean, heuristic, gate
        self.jobs: list[EpisodeJob] = []

    async def run_episode(self, job: EpisodeJob) -> EpisodeResult:
        self.jobs.append(job)
        if self.gate is not None and job.steps is not None:
            await self.gate.wait()
        if job.attack == "none":
            length, attacked = self.clean, ()
        elif job.steps is None:
            length, attacked = self.heuristic, tuple(range(50, 50 + job.max_attacked_steps))
        else:
            length = min(self.clean, job.steps[0] + 30) if job.steps else self.clean
            attacked = tuple(step for step in job.steps if step < length)
        return EpisodeResult(
            agent=job.agent,
            attack=job.attack,
            budget=job.budget,
            seed=job.seed,
            states=np.zeros((length + 1, 4), np.float32),
            actions=np.zeros(length, np.int64),
            perturbations=np.zeros((length, 4), np.float32),
            preferences=np.zeros(length, np.float32),
            attacked_steps=attacked,
            total_return=length,
            terminated=length < 500,
        )


def test_settings_are_the_offered_choices() -> None:
    assert policy.check_setting("0.1", "3") == policy.PolicySetting(0.1, 3)
    assert policy.check_setting(0.2, 10) == policy.PolicySetting(0.2, 10)
    for budget, count in (("0.3", "3"), ("0.1", "4"), ("x", "3"), (0.1, True), (None, 3)):
        with pytest.raises(Invalid, match="Choose a budget"):
            policy.check_setting(budget, count)


def test_picks_are_whole_steps_each_once_and_at_most_k() -> None:
    assert policy.parse_picks("40, 12 12;7", 3) == (7, 12, 40)
    assert policy.parse_picks([3, "5"], 2) == (3, 5)
    assert policy.parse_picks("", 3) == ()
    message = messages.POLICY_STEPS_INVALID.format(k=2, last=499)
    for raw in ("1, 2, 3", "500", "-1", "1.5", [True], [None]):
        with pytest.raises(Invalid) as refused:
            policy.parse_picks(raw, 2)  # type: ignore[arg-type]
        assert refused.value.message == message


def test_sooner_than_the_heuristic_wins_by_margin() -> None:
    assert policy.score_round(60, 120) == ("win", policy.WIN_POINTS + 20)
    assert policy.score_round(119, 120) == ("win", policy.WIN_POINTS)
    assert policy.score_round(30, 500) == ("win", policy.WIN_POINTS + round(40 * 470 / 500))
    assert policy.score_round(120, 120) == ("tie", policy.TIE_POINTS)
    assert policy.score_round(121, 120) == ("loss", 0)


async def count_rounds(database: object) -> int:
    async with database.sessionmaker() as session:  # type: ignore[attr-defined]
        return int(await session.scalar(select(func.count(PolicyRoundRecord.id))) or 0)


async def test_a_round_is_started_once_played_once_and_scored_on_the_servers_episode(database_url: str) -> None:
    database = open_database(database_url)
    episodes = RuleEpisodes(heuristic=120)
    try:
        async with database.sessionmaker() as session:
            player, _ = await players.create_player(session, nickname="picker")
            await session.commit()
            setting = policy.PolicySetting(0.1, 3)
            record = await policy.start_round(session, episodes, player=player, setting=setting, seed=77)
            first_id = record.id
            assert (record.clean_return, record.heuristic_return, record.heuristic_steps) == (500, 120, [50, 51, 52])
            assert record.pending_player_id == player.id and record.played_at is None
            shown = await policy.round_episodes(episodes, record)
            assert shown.heuristic is None and shown.played is None, "the heuristic stays hidden until played"
            again = await policy.start_round(session, episodes, player=player, setting=policy.PolicySetting(0.2, 10))
            assert again.id == record.id, "no second round while one is unplayed: no shopping for an easy seed"
            played = await policy.play_round(session, episodes, player=player, round_id=record.id, picks=[70, 10])
            assert (played.picks, played.player_return, played.outcome) == ([10, 70], 40, "win")
            assert played.points == policy.WIN_POINTS + round(40 * 80 / 120) and played.pending_player_id is None
            job = episodes.jobs[-1]
            assert (job.attack, job.steps, job.budget, job.max_attacked_steps, job.seed) == (
                "timed",
                (10, 70),
                0.1,
                3,
                77,
            )
            with pytest.raises(Conflict, match="one result per round"):
                await policy.play_round(session, episodes, player=player, round_id=record.id, picks=[1])
            shown = await policy.round_episodes(episodes, played)
            assert shown.heuristic is not None and shown.played is not None and shown.played.total_return == 40
            other, _ = await players.create_player(session, nickname="other")
            await session.commit()
            with pytest.raises(Forbidden):
                await policy.play_round(session, episodes, player=other, round_id=record.id, picks=[1])
            with pytest.raises(NotFound):
                await policy.player_round(session, player=other, round_id="0" * 32)
            fresh = await policy.start_round(session, episodes, player=player, setting=setting)
            assert fresh.id != first_id and len(fresh.id) == 32
            with pytest.raises(Invalid):
                await policy.play_round(session, episodes, player=player, round_id=fresh.id, picks=[1, 2, 3, 4])
        assert await count_rounds(database) == 2
    finally:
        await database.dispose()


async def test_two_plays_at_once_store_one_result(database_url: str) -> None:
    database = open_database(database_url)
    gate = asyncio.Event()
    episodes = RuleEpisodes(gate=gate)
    try:
        async with database.sessionmaker() as session:
            player, _ = await players.create_player(session, nickname="racer")
            await session.commit()
            record = await policy.start_round(session, episodes, player=player, setting=policy.PolicySetting())

        async def play(picks: list[int]) -> object:
            async with database.sessionmaker() as own:
                me = await players.player_by_id(own, player.id)
                assert me is not None
                try:
                    return await policy.play_round(own, episodes, player=me, round_id=record.id, picks=picks)
                except Conflict as error:
                    return error

        tasks = [asyncio.create_task(play([5])), asyncio.create_task(play([200]))]
        while sum(job.steps is not None for job in episodes.jobs) < 2:
            await asyncio.sleep(0.01)
        gate.set()
        outcomes = await asyncio.gather(*tasks)
        assert sum(isinstance(outcome, Conflict) for outcome in outcomes) == 1
        async with database.sessionmaker() as session:
            stored = await session.get(PolicyRoundRecord, record.id)
            assert stored is not None and stored.picks in ([5], [200])
    finally:
        await database.dispose()


async def test_two_starts_at_once_leave_one_unplayed_round(database_url: str) -> None:
    database = open_database(database_url)
    episodes = RuleEpisodes()
    try:
        async with database.sessionmaker() as session:
            player, _ = await players.create_player(session, nickname="twice")
            await session.commit()

        async def start() -> str:
            async with database.sessionmaker() as own:
                me = await players.player_by_id(own, player.id)
                assert me is not None
                return (await policy.start_round(own, episodes, player=me, setting=policy.PolicySetting())).id

        ids = await asyncio.gather(start(), start())
        assert ids[0] == ids[1] and await count_rounds(database) == 1
    finally:
        await database.dispose()


async def test_a_service_without_episodes_says_so() -> None:
    with pytest.raises(ServiceUnavailable, match="CartPole"):
        policy.episode_service(object())

"""Pick-the-moments numbers (issue 19) from stored rounds: the board, the win rate against the heuristic with its
Wilson interval, steps survived by K and budget with bootstrap intervals, and the export paged by keyset with its ids
unchanged and free text escaped; unplayed rounds and other events are left out."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from app.db.session import open_database
from app.db.tables import EventRecord, PlayerRecord, PolicyRoundRecord, new_id
from app.stats import policy as policy_stats
from app.stats.export import one_session
from app.stats.intervals import wilson_interval

pytestmark = pytest.mark.anyio
START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def player(nickname: str, event_id: str | None = None) -> PlayerRecord:
    return PlayerRecord(id=new_id(), nickname=nickname, token_hash=new_id() + new_id(), event_id=event_id)


def played(owner: PlayerRecord, k: int, budget: float, mine: int, heuristic: int, minute: int) -> PolicyRoundRecord:
    outcome = "win" if mine < heuristic else "tie" if mine == heuristic else "loss"
    return PolicyRoundRecord(
        id=new_id(),
        player_id=owner.id,
        event_id=owner.event_id,
        agent="cartpole-dqn",
        seed=minute,
        budget=budget,
        max_attacked_steps=k,
        threshold=0.6,
        clean_return=500,
        heuristic_return=heuristic,
        heuristic_steps=[50, 51][:k],
        played_at=START + timedelta(minutes=minute),
        picks=[minute, minute + 1][:k],
        player_return=mine,
        outcome=outcome,
        points={"win": 20, "tie": 2, "loss": 0}[outcome],
    )


async def test_board_summary_and_export(database_url: str) -> None:
    database = open_database(database_url)
    try:
        async with database.sessionmaker() as session:
            event = EventRecord(
                id=new_id(), code="POL123", name="e", host_token_hash=new_id(), pack="fashion", settings={}
            )
            ada, bob, eve = player("ada"), player('=HYPERLINK("x")'), player("eve", event.id)
            session.add_all([event, ada, bob, eve])
            await session.flush()
            rows = [
                played(ada, 3, 0.1, 40, 120, 1),
                played(ada, 3, 0.1, 130, 120, 2),
                played(bob, 3, 0.1, 120, 120, 3),
                played(bob, 1, 0.2, 30, 60, 4),
                played(eve, 1, 0.2, 20, 60, 5),
            ]
            unplayed = PolicyRoundRecord(
                id=new_id(),
                player_id=ada.id,
                agent="cartpole-dqn",
                seed=9,
                budget=0.1,
                max_attacked_steps=3,
                threshold=0.6,
                clean_return=500,
                heuristic_return=100,
                heuristic_steps=[],
                pending_player_id=ada.id,
            )
            session.add_all([*rows, unplayed])
            await session.commit()

            board = await policy_stats.policy_board(session)
            assert [(r.nickname, r.points, r.rounds, r.wins) for r in board] == [
                ('=HYPERLINK("x")', 22, 2, 1),
                ("eve", 20, 1, 1),
                ("ada", 20, 2, 1),
            ], "by points; the same points: fewer rounds first"
            only_event = await policy_stats.policy_board(session, event_id=event.id)
            assert [(r.nickname, r.rounds) for r in only_event] == [("eve", 1)]

            summary = (await policy_stats.policy_summary(session)).as_dict()
            assert (summary["n"], summary["wins"], summary["ties"]) == (5, 3, 1)
            assert summary["win_ci"] == list(wilson_interval(3, 5))
            by = {(s["attacked_steps"], s["budget"]): s for s in summary["by_setting"]}
            assert sorted(by) == [(1, 0.2), (3, 0.1)]
            three = by[(3, 0.1)]
            assert three["n"] == 3 and three["wins"] == 1 and three["player_steps"]["mean"] == pytest.approx(290 / 3)
            low, high = three["player_steps"]["low"], three["player_steps"]["high"]
            assert 40 <= low <= 290 / 3 <= high <= 130
            data = np.array([40, 130, 120], dtype=np.float64)
            rng = np.random.default_rng(0)
            means = data[rng.integers(0, 3, size=(10_000, 3))].mean(axis=1)
            assert [low, high] == pytest.approx(list(np.quantile(means, [0.025, 0.975])))
            assert three["heuristic_steps"] == {"mean": 120.0, "low": 120.0, "high": 120.0}
            event_summary = (await policy_stats.policy_summary(session, event_id=event.id)).as_dict()
            assert event_summary["n"] == 1 and event_summary["by_setting"][0]["wins"] == 1

            chunks = [c async for c in policy_stats.stream_policy_rounds(one_session(session), "csv", page_size=2)]
            parsed = list(csv.DictReader(io.StringIO("".join(chunks))))
            assert [r["round_id"] for r in parsed] == [r.id for r in rows], "oldest first, across pages, unplayed out"
            assert parsed[2]["nickname"] == '\'=HYPERLINK("x")' and parsed[2]["player_id"] == bob.id
            assert parsed[4]["event"] == "POL123" and parsed[0]["picks"] == "1 2"
            text = "".join(
                [c async for c in policy_stats.stream_policy_rounds(one_session(session), "json", page_size=2)]
            )
            exported = json.loads(text)
            assert [r["round_id"] for r in exported] == [r.id for r in rows] and exported[2]["nickname"].startswith("=")
            assert exported[0]["picks"] == [1, 2] and exported[0]["played_at"].startswith("2026-12-03T09:01")
            with pytest.raises(ValueError):
                [c async for c in policy_stats.stream_policy_rounds(one_session(session), "xml")]
    finally:
        await database.dispose()

"""Pick-the-moments numbers (issue 19), read from the policy_rounds table: the board, the win rate against the
strategically-timed heuristic with its Wilson interval, steps survived by K and budget with bootstrap intervals, and
the export (JSON and CSV, ids unchanged), streamed page by page like app/stats/export.py."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import EventRecord, PlayerRecord, PolicyRoundRecord
from app.stats.answer_counts import count_true
from app.stats.export import EXPORT_FORMATS, PAGE_SIZE, SessionOpener, csv_cell, iso_utc, keyset_pages
from app.stats.intervals import Proportion

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
INTERVAL_DOC = f"mean with a 95% percentile bootstrap interval ({BOOTSTRAP_RESAMPLES:,} resamples, numpy seed 0)"


@dataclass(frozen=True)
class PolicyBoardRow:
    rank: int
    player_id: str
    nickname: str
    points: int
    rounds: int
    wins: int

    @property
    def win_rate(self) -> float:
        return Proportion(self.wins, self.rounds).value


def played() -> Any:
    return PolicyRoundRecord.played_at.is_not(None)


async def policy_board(session: AsyncSession, *, limit: int = 20, event_id: str | None = None) -> list[PolicyBoardRow]:
    """Players by pick-the-moments points; with ``event_id`` only that event's players, less any the host removed."""
    points = func.coalesce(func.sum(PolicyRoundRecord.points), 0)
    rounds = func.count(PolicyRoundRecord.id)
    query = (
        select(PlayerRecord.id, PlayerRecord.nickname, points, rounds, count_true(PolicyRoundRecord.outcome == "win"))
        .join(PolicyRoundRecord, PolicyRoundRecord.player_id == PlayerRecord.id)
        .where(played())
        .group_by(PlayerRecord.id, PlayerRecord.nickname)
        .order_by(points.desc(), rounds.asc(), PlayerRecord.id)
        .limit(limit)
    )
    if event_id is not None:
        query = query.where(PolicyRoundRecord.event_id == event_id, PlayerRecord.removed.is_(False))
    rows = (await session.execute(query)).all()
    return [
        PolicyBoardRow(
            rank=rank, player_id=row[0], nickname=row[1], points=int(row[2]), rounds=row[3], wins=int(row[4])
        )
        for rank, row in enumerate(rows, start=1)
    ]


def mean_interval(values: list[int]) -> dict[str, float | None]:
    """The mean and its 95% percentile-bootstrap interval (None for no values)."""
    if not values:
        return {"mean": None, "low": None, "high": None}
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = data[rng.integers(0, len(data), size=(BOOTSTRAP_RESAMPLES, len(data)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return {"mean": float(data.mean()), "low": float(low), "high": float(high)}


@dataclass(frozen=True)
class SettingStats:
    """Played rounds at one (K, budget): the player's and the heuristic's steps survived, and the player's wins."""

    attacked_steps: int
    budget: float
    player_returns: list[int]
    heuristic_returns: list[int]
    wins: int

    def as_dict(self) -> dict[str, Any]:
        win = Proportion(self.wins, len(self.player_returns))
        low, high = win.interval
        return {
            "attacked_steps": self.attacked_steps,
            "budget": self.budget,
            "n": len(self.player_returns),
            "wins": self.wins,
            "win_rate": win.value,
            "win_ci": [low, high],
            "player_steps": mean_interval(self.player_returns),
            "heuristic_steps": mean_interval(self.heuristic_returns),
        }


@dataclass(frozen=True)
class PolicySummary:
    n: int
    wins: int
    ties: int
    by_setting: list[SettingStats]

    def as_dict(self) -> dict[str, Any]:
        win = Proportion(self.wins, self.n)
        low, high = win.interval
        return {
            "n": self.n,
            "wins": self.wins,
            "ties": self.ties,
            "win_rate": win.value,
            "win_ci": [low, high],
            "interval": "Wilson 95% for win rates; " + INTERVAL_DOC + " for steps survived",
            "by_setting": [stats.as_dict() for stats in self.by_setting],
        }


async def policy_summary(session: AsyncSession, *, event_id: str | None = None) -> PolicySummary:
    """Win rate against the heuristic and steps survived by K and budget, over played rounds."""
    query = select(
        PolicyRoundRecord.max_attacked_steps,
        PolicyRoundRecord.budget,
        PolicyRoundRecord.player_return,
        PolicyRoundRecord.heuristic_return,
        PolicyRoundRecord.outcome,
    ).where(played())
    if event_id is not None:
        query = query.where(PolicyRoundRecord.event_id == event_id)
    groups: dict[tuple[int, float], list[tuple[int, int, str]]] = defaultdict(list)
    for k, budget, player_return, heuristic_return, outcome in (await session.execute(query)).all():
        # played rounds always have a return (played_at, picks, the return and the outcome are set together)
        groups[(int(k), round(float(budget), 6))].append((player_return or 0, int(heuristic_return), str(outcome)))
    by_setting = [
        SettingStats(
            attacked_steps=k,
            budget=budget,
            player_returns=[row[0] for row in rows],
            heuristic_returns=[row[1] for row in rows],
            wins=sum(row[2] == "win" for row in rows),
        )
        for (k, budget), rows in sorted(groups.items())
    ]
    every = [row for rows in groups.values() for row in rows]
    return PolicySummary(
        n=len(every),
        wins=sum(row[2] == "win" for row in every),
        ties=sum(row[2] == "tie" for row in every),
        by_setting=by_setting,
    )


# -- export --------------------------------------------------------------------------------------------------------

POLICY_COLUMNS: tuple[str, ...] = (
    "round_id",
    "played_at",
    "player_id",
    "nickname",
    "event",
    "agent",
    "seed",
    "budget",
    "max_attacked_steps",
    "threshold",
    "picks",
    "player_steps",
    "heuristic_steps",
    "heuristic_picks",
    "clean_steps",
    "outcome",
    "points",
)
POLICY_ID_COLUMNS = frozenset({"round_id", "player_id"})


async def iter_policy_rows(
    open_session: SessionOpener, *, page_size: int = PAGE_SIZE, event_id: str | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Played rounds, oldest first, keyset-paginated on (played_at, id); each page in a short session of its own."""
    query = (
        select(PolicyRoundRecord, PlayerRecord.nickname, EventRecord.code)
        .join(PlayerRecord, PlayerRecord.id == PolicyRoundRecord.player_id)
        .outerjoin(EventRecord, EventRecord.id == PolicyRoundRecord.event_id)
        .where(played())
    )
    if event_id is not None:
        query = query.where(PolicyRoundRecord.event_id == event_id)
    pages = keyset_pages(open_session, query, PolicyRoundRecord.played_at, PolicyRoundRecord.id, page_size=page_size)
    async for rows, _ in pages:
        for record, nickname, code in rows:
            yield policy_row(record, nickname, code)


def policy_row(record: PolicyRoundRecord, nickname: str, event_code: str | None) -> dict[str, Any]:
    return {
        "round_id": record.id,
        "played_at": iso_utc(record.played_at) if record.played_at else None,
        "player_id": record.player_id,
        "nickname": nickname,
        "event": event_code,
        "agent": record.agent,
        "seed": record.seed,
        "budget": round(record.budget, 6),
        "max_attacked_steps": record.max_attacked_steps,
        "threshold": record.threshold,
        "picks": list(record.picks or []),
        "player_steps": record.player_return,
        "heuristic_steps": record.heuristic_return,
        "heuristic_picks": list(record.heuristic_steps),
        "clean_steps": record.clean_return,
        "outcome": record.outcome,
        "points": record.points,
    }


def policy_csv_line(row: dict[str, Any]) -> str:
    buffer = io.StringIO()
    cells = []
    for column in POLICY_COLUMNS:
        value = row[column]
        if isinstance(value, list):  # step lists as "3 17 40": one cell, no formula character
            value = " ".join(str(step) for step in value)
        cells.append(csv_cell(value, escape=column not in POLICY_ID_COLUMNS))
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()


async def stream_policy_rounds(
    open_session: SessionOpener, fmt: str, *, event_id: str | None = None, page_size: int = PAGE_SIZE
) -> AsyncIterator[str]:
    """The whole export as text chunks: CSV with a header, a JSON array, or JSON lines."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerow(POLICY_COLUMNS)
        yield buffer.getvalue()
    elif fmt == "json":
        yield "["
    first = True
    async for row in iter_policy_rows(open_session, event_id=event_id, page_size=page_size):
        if fmt == "csv":
            yield policy_csv_line(row)
        else:
            line = json.dumps(row, ensure_ascii=False)
            yield line + "\n" if fmt == "jsonl" else ("" if first else ",\n") + line
        first = False
    if fmt == "json":
        yield "]\n"

"""GET /api/v1/stats: accuracy of people and of the model with 95% Wilson intervals and error consistency, grouped
and filtered (science mode). The numbers come from app.stats.science; this module parses and shapes."""

from __future__ import annotations

import asyncio
import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, BeforeValidator, Field

from app import messages
from app.api.openapi import problem_responses
from app.api.schemas import Problem
from app.deps import SessionDep
from app.errors import Invalid
from app.game import events
from app.stats import science
from app.stats.cache import answers_mark, cache_for
from app.stats.consistency import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from app.stats.trials import EPS_BUCKET_DOC, StatsFilter, load_trials

router = APIRouter(prefix="/api/v1", tags=["stats"])

# [low, high]. A list rather than tuple[float, float]: a nullable tuple's prefixItems trips schema tools
# (schemathesis reads them as draft-4 items); the JSON is the same.
Interval = Annotated[list[float], Field(min_length=2, max_length=2)]

GROUP_BY_HELP = (
    "Comma-separated subset of: "
    + ", ".join(science.GROUP_KEYS)
    + f". Default: {','.join(science.DEFAULT_GROUP_BY)}. Empty: one group for everything."
)


class ConsistencyOut(BaseModel):
    kappa: float | None = Field(description="Error consistency (Geirhos et al. 2020); null where undefined")
    ci: Interval | None = Field(description="95% percentile bootstrap interval over trials")
    trials: int = Field(description="Trials it rests on (answers; for people vs people, together images)")
    pairs: int | None = Field(None, description="People vs people only: pairs of people with a defined kappa")
    people: int | None = Field(None, description="By person only: people with a defined kappa")


class GroupOut(BaseModel):
    keys: dict[str, str | None] = Field(description="The group's value for each group_by key")
    n: int = Field(description="Answered rounds (trials) in the group")
    human_correct: int
    human_accuracy: float
    human_ci: tuple[float, float] = Field(description="95% Wilson interval [low, high]")
    model_correct: int
    model_accuracy: float = Field(description="The model on the same answered rounds as the people")
    model_ci: tuple[float, float] = Field(description="95% Wilson interval [low, high]")
    error_consistency_model: ConsistencyOut = Field(description="People vs the model, pooled over the answers")
    error_consistency_model_by_person: ConsistencyOut = Field(
        description="Each person vs the model on their own trials, mean over people (interval: bootstrap of people)"
    )
    error_consistency_people: ConsistencyOut | None = Field(
        description="Mean over pairs of people on together images both answered; null without such images"
    )


class BootstrapOut(BaseModel):
    resamples: int
    seed: int
    generator: str
    interval: str


class StatsOut(BaseModel):
    group_by: list[str]
    filters: dict[str, str | None]
    eps_buckets: str = Field(description="How eps is bucketed")
    bootstrap: BootstrapOut
    groups: list[GroupOut]


def bootstrap_info() -> BootstrapOut:
    return BootstrapOut(
        resamples=BOOTSTRAP_RESAMPLES,
        seed=BOOTSTRAP_SEED,
        generator="Python random.Random(seed), fresh for each interval; getrandbits(32*m) per resample of m, "
        "word u draws item (u*m) >> 32",
        interval="percentile, 2.5th and 97.5th, linear interpolation; undefined resamples dropped",
    )


Text = Annotated[str | None, Query(max_length=60)]

ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def calendar_day(raw: object) -> object:
    """Only YYYY-MM-DD, as documented: pydantic would also read a number as seconds since 1970 (until=0)."""
    if isinstance(raw, str) and not ISO_DAY.fullmatch(raw):
        raise ValueError("a day is written YYYY-MM-DD")
    return raw


Day = Annotated[date | None, BeforeValidator(calendar_day)]


@router.get(
    "/stats",
    response_model=StatsOut,
    responses=problem_responses(
        {
            404: "No event with that code",
            422: "Unknown group_by key (the message lists the valid ones) or dates",
        }
    ),
)
async def get_stats(
    request: Request,
    session: SessionDep,
    event: Annotated[str | None, Query(max_length=20, description="Only this event (its join code)")] = None,
    pack: Text = None,
    opponent: Text = None,
    attack: Text = None,
    condition: Annotated[str | None, Query(max_length=16, description="adversarial, clean, noise, ...")] = None,
    since: Annotated[Day, Query(description="First day (UTC) of answers counted, YYYY-MM-DD")] = None,
    until: Annotated[Day, Query(description="Last day (UTC) of answers counted, included")] = None,
    group_by: Annotated[str | None, Query(max_length=200, description=GROUP_BY_HELP)] = None,
) -> StatsOut:
    """Accuracy of people and of the model by group, with 95% Wilson intervals, and error consistency (kappa) between
    people and the model and between pairs of people on together images, with bootstrap intervals. Counts only
    answered rounds, never answers to a together image whose countdown is still running. The exported bundle
    (`arena export --format zip`) recomputes this table from its CSV files alone."""
    try:
        keys = science.parse_group_by(group_by)
    except ValueError as error:
        raise Invalid(str(error)) from None
    if since is not None and until is not None and since > until:
        raise Invalid(messages.STATS_DATES_INVALID)
    chosen = None if event is None else await events.event_by_code(session, event)
    event_id = chosen.id if chosen is not None else None
    filters = StatsFilter(
        event_id=event_id, pack=pack, opponent=opponent, attack=attack, condition=condition, since=since, until=until
    )

    async def compute() -> list[GroupOut]:
        trials = await load_trials(session, filters)
        groups = await asyncio.to_thread(science.group_stats, trials, keys)  # the bootstrap is CPU work
        return [GroupOut.model_validate(group.as_dict()) for group in groups]

    # Cached until a new answer counts (app/stats/cache.py); the key holds everything the table depends on.
    key = ("api", filters, keys, await answers_mark(session))
    groups = await cache_for(request.app.state).get_or_compute(key, compute)
    return StatsOut(
        group_by=list(keys),
        filters={
            "event": chosen.code if chosen is not None else None,
            "pack": pack,
            "opponent": opponent,
            "attack": attack,
            "condition": condition,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        },
        eps_buckets=EPS_BUCKET_DOC,
        bootstrap=bootstrap_info(),
        groups=list(groups),
    )


class GuessOut(BaseModel):
    n: int = Field(description="Answered guess-the-machine rounds")
    agreed: int = Field(description="Answers that named the machine's label (not the foil)")
    rate: float | None
    ci: Interval | None = Field(description="95% Wilson interval")
    fooled_n: int = Field(description="Of those, rounds where the machine was fooled (chance: 50%)")
    fooled_agreed: int
    fooled_rate: float | None
    fooled_ci: Interval | None


@router.get("/stats/guess-machine", response_model=GuessOut, responses={404: {"model": Problem}})
async def get_guess_agreement(
    session: SessionDep,
    event: Annotated[str | None, Query(max_length=20, description="Only this event (its join code)")] = None,
    opponent: Text = None,
    attack: Text = None,
    condition: Annotated[str | None, Query(max_length=16)] = None,
) -> GuessOut:
    """Guess the machine (Zhou & Firestone 2019): how often people pick the machine's answer over a foil, overall
    and where the machine was fooled, with 95% Wilson intervals."""
    chosen = None if event is None else await events.event_by_code(session, event)
    filters = StatsFilter(
        event_id=chosen.id if chosen is not None else None, opponent=opponent, attack=attack, condition=condition
    )
    return GuessOut(**vars(await science.guess_agreement(session, filters)))

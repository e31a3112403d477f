"""The policy lab and pick the moments over JSON (issue 19): the lab's episodes, a player's rounds, the board, the
stats and the export. Thin: app/game/policy.py has the rules, app/stats/policy.py the numbers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.api.limits import client_address, fair_share_key
from app.api.openapi import problem_responses
from app.db.tables import PolicyRoundRecord
from app.deps import ApiPlayer, ServiceDep, SessionDep
from app.game import events, policy
from app.ml.service.episode_contracts import MAX_ATTACKED_STEPS, MAX_SEED, MAX_STEPS, EpisodeResult
from app.stats import export
from app.stats import policy as policy_stats

router = APIRouter(prefix="/api/v1", tags=["policy"])

SERVICE_ERRORS = {
    503: "Model service busy or down, or one episode of yours is already running; retry after Retry-After"
}
PLAYER_ERRORS = {401: "Missing or invalid player token", 422: "Invalid input", **SERVICE_ERRORS}


class EpisodeOut(BaseModel):
    attack: str = Field(description="none, fgsm, timed or induction")
    budget: float = Field(description="L∞ on the normalised state")
    seed: int
    steps_survived: int = Field(alias="return", description="Steps the pole stayed up (CartPole's return)")
    terminated: bool = Field(description="The pole fell or the cart left the track (false: the 500-step limit)")
    attacked_steps: list[int] = Field(description="The steps whose observation was perturbed (0-based)")
    states: list[list[float]] = Field(
        description="The true state before each step, then the final one: cart position (m), cart velocity, pole "
        "angle (rad), pole angular velocity; float32 values, exact"
    )
    actions: list[int] = Field(description="0 pushes left, 1 right")
    perturbations: list[list[float]] = Field(description="What the attack added to the normalised state, per step")
    preferences: list[float] = Field(description="The agent's preference between its actions per step (softmax gap)")

    model_config = {"populate_by_name": True}


def episode_out(episode: EpisodeResult) -> EpisodeOut:
    return EpisodeOut.model_validate(episode.as_json())


class LabOut(BaseModel):
    attack: str
    words: str = Field(description="What the attack does, in plain words")
    clean: EpisodeOut
    attacked: EpisodeOut


Attack = Literal["fgsm", "timed", "induction"]


@router.get(
    "/policy/episodes", response_model=LabOut, responses=problem_responses({422: "Invalid input", **SERVICE_ERRORS})
)
async def get_episodes(
    request: Request,
    service: ServiceDep,
    attack: Attack = "timed",
    budget: Annotated[float, Query(ge=0.0, le=1.0, description="L∞ on the normalised state")] = policy.DEFAULT_BUDGET,
    seed: Annotated[int, Query(ge=0, le=MAX_SEED)] = 1000,
    attacked_steps: Annotated[
        int, Query(ge=0, le=MAX_ATTACKED_STEPS, description="K: the timed attack's most attacked steps")
    ] = 10,
) -> LabOut:
    """One seeded episode of the CartPole agent clean and under an attack, step by step, to replay in a browser.
    Deterministic: the same query gives the same states bit for bit."""
    choice = policy.check_lab_choice(attack, budget, seed, attacked_steps)
    clean, attacked = await policy.lab_episodes(
        service, choice, client=f"lab:{client_address(request)}", share=fair_share_key(request)
    )
    return LabOut(
        attack=attack, words=policy.ATTACK_WORDS[attack], clean=episode_out(clean), attacked=episode_out(attacked)
    )


class PolicyRoundIn(BaseModel):
    # The offered choices as enums (Literal cannot hold floats); app/game/policy.check_setting enforces them.
    budget: float = Field(
        policy.DEFAULT_BUDGET,
        description="L∞ on the normalised state",
        json_schema_extra={"enum": list(policy.BUDGETS)},
    )
    attacked_steps: int = Field(
        policy.DEFAULT_COUNT,
        description="K: the most steps to attack",
        json_schema_extra={"enum": list(policy.ATTACK_COUNTS)},
    )


class PicksIn(BaseModel):
    steps: list[Annotated[int, Field(ge=0, le=MAX_STEPS - 1)]] = Field(
        max_length=MAX_ATTACKED_STEPS, description="The steps to attack (0-based), at most the round's K"
    )


class PolicyRoundOut(BaseModel):
    round_id: str
    seed: int
    budget: float
    attacked_steps: int = Field(description="K")
    played: bool
    clean: EpisodeOut
    picks: list[int] | None = None
    player: EpisodeOut | None = Field(None, description="The episode with the player's picks (once played)")
    heuristic: EpisodeOut | None = Field(None, description="The strategically-timed heuristic's (once played)")
    outcome: str | None = Field(None, description="win, tie or loss against the heuristic")
    points: int | None = None


async def round_out(service: Any, record: PolicyRoundRecord, share: str) -> PolicyRoundOut:
    shown = await policy.round_episodes(service, record, client=record.player_id, share=share)
    return PolicyRoundOut(
        round_id=record.id,
        seed=record.seed,
        budget=record.budget,
        attacked_steps=record.max_attacked_steps,
        played=record.played_at is not None,
        clean=episode_out(shown.clean),
        picks=record.picks,
        player=episode_out(shown.played) if shown.played is not None else None,
        heuristic=episode_out(shown.heuristic) if shown.heuristic is not None else None,
        outcome=record.outcome,
        points=record.points,
    )


@router.post(
    "/policy/rounds", status_code=201, response_model=PolicyRoundOut, responses=problem_responses(PLAYER_ERRORS)
)
async def create_policy_round(
    request: Request, body: PolicyRoundIn, player: ApiPlayer, session: SessionDep, service: ServiceDep
) -> PolicyRoundOut:
    """A pick-the-moments round: a seeded episode (its clean run given) whose at most K steps you will attack to
    topple the pole sooner than the strategically-timed heuristic with the same K and budget. Your unplayed round,
    if you have one, comes back instead."""
    setting = policy.check_setting(body.budget, body.attacked_steps)
    share = fair_share_key(request)
    record = await policy.start_round(session, service, player=player, setting=setting, client_key=share)
    return await round_out(service, record, share)


@router.get(
    "/policy/rounds/{round_id}",
    response_model=PolicyRoundOut,
    responses=problem_responses({**PLAYER_ERRORS, 403: "Another player's round", 404: "No such round"}),
)
async def get_policy_round(
    request: Request, round_id: str, player: ApiPlayer, session: SessionDep, service: ServiceDep
) -> PolicyRoundOut:
    record = await policy.player_round(session, player=player, round_id=round_id)
    return await round_out(service, record, fair_share_key(request))


@router.post(
    "/policy/rounds/{round_id}/picks",
    response_model=PolicyRoundOut,
    responses=problem_responses(
        {**PLAYER_ERRORS, 403: "Another player's round", 404: "No such round", 409: "Played already"}
    ),
)
async def play_policy_round(
    request: Request, round_id: str, body: PicksIn, player: ApiPlayer, session: SessionDep, service: ServiceDep
) -> PolicyRoundOut:
    """Attack these steps: the server runs the episode with them and scores it against the heuristic, once."""
    share = fair_share_key(request)
    record = await policy.play_round(
        session, service, player=player, round_id=round_id, picks=body.steps, client_key=share
    )
    return await round_out(service, record, share)


class PolicyBoardEntry(BaseModel):
    rank: int
    player_id: str
    nickname: str
    points: int
    rounds: int
    wins: int
    win_rate: float


EventCode = Annotated[str | None, Query(max_length=20, description="Only this event (its join code)")]


async def event_id_of(session: Any, code: str | None) -> str | None:
    return None if code is None else (await events.event_by_code(session, code)).id


@router.get(
    "/policy/leaderboard", response_model=list[PolicyBoardEntry], responses=problem_responses({404: "No such event"})
)
async def get_policy_board(
    session: SessionDep, event: EventCode = None, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> list[PolicyBoardEntry]:
    rows = await policy_stats.policy_board(session, limit=limit, event_id=await event_id_of(session, event))
    return [PolicyBoardEntry(**vars(row), win_rate=row.win_rate) for row in rows]


@router.get("/policy/stats", responses=problem_responses({404: "No such event"}))
async def get_policy_stats(session: SessionDep, event: EventCode = None) -> dict[str, Any]:
    """Win rate against the heuristic (Wilson 95% interval) and steps survived by K and budget (bootstrap)."""
    summary = await policy_stats.policy_summary(session, event_id=await event_id_of(session, event))
    return summary.as_dict()


@router.get("/export/policy_rounds.{fmt}", response_class=StreamingResponse)
async def export_policy_rounds(
    request: Request,
    fmt: Literal["csv", "json", "jsonl"],
    download: bool = Query(False, description="Send Content-Disposition: attachment"),
) -> StreamingResponse:
    """Every played pick-the-moments round, oldest first, streamed in pages (ids as stored)."""
    headers = {"Content-Disposition": f'attachment; filename="policy_rounds.{fmt}"'} if download else {}
    chunks = policy_stats.stream_policy_rounds(request.app.state.database.sessionmaker, fmt)
    return request.app.state.downloads.stream(chunks, media_type=export.MEDIA_TYPES[fmt], headers=headers)

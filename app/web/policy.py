"""The policy lab (``/lab/policy``) and pick the moments (``/lab/policy/play``), issue 19.

The lab shows one seeded CartPole episode clean and under an attack side by side, replayed by the browser from the
recorded states (static/policy/policy.js draws them on canvases; no rendering library), with a budget slider, the
count of attacked steps, what each attack does in plain words and the card's plot. The game's pages are plain forms
that work without JavaScript (the steps to attack typed as numbers); with it, the timeline and the slow-motion replay
fill the same form. No torch here: episodes come from the model service through app/game/policy.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, Response

from app import messages
from app.api.limits import client_address, fair_share_key
from app.deps import CookiePlayer, ServiceDep, SessionDep, SettingsDep, check_csrf
from app.errors import ArenaError, NotFound
from app.game import policy
from app.ml.service.episode_contracts import DEFAULT_AGENT, MAX_ATTACKED_STEPS, MAX_SEED, EpisodeResult
from app.stats import policy as policy_stats
from app.web.routes import render, require_player, see_other
from app.web.shown_score import SHOWN_SCORE

router = APIRouter(include_in_schema=False, dependencies=SHOWN_SCORE)

PLOT_STEM = f"{DEFAULT_AGENT}-attacks"
CsrfField = Annotated[str | None, Form(alias="csrf_token")]


def agent_card(models_dir: Path) -> dict[str, Any] | None:
    """The agent's card as train.py wrote it, or None when it is missing or unreadable."""
    try:
        card: dict[str, Any] = json.loads((Path(models_dir) / f"{DEFAULT_AGENT}.json").read_text(encoding="utf-8"))
        card["evaluation"]["clean"]["mean"]  # noqa: B018  (the page needs these)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return card


def episode_data(episode: EpisodeResult) -> dict[str, Any]:
    return episode.as_json()


@router.get("/lab/policy", name="lab_policy")
async def lab_page(
    request: Request,
    player: CookiePlayer,
    service: ServiceDep,
    settings: SettingsDep,
    attack: Annotated[str, Query(max_length=20)] = "timed",
    budget: Annotated[float, Query(ge=0.0, le=1.0)] = policy.DEFAULT_BUDGET,
    seed: Annotated[int, Query(ge=0, le=MAX_SEED)] = 1000,
    attacked_steps: Annotated[int, Query(ge=0, le=MAX_ATTACKED_STEPS)] = 10,
) -> Response:
    choice = policy.check_lab_choice(attack, budget, seed, attacked_steps)
    context: dict[str, Any] = {"player": player, "choice": choice, "words": policy.ATTACK_WORDS}
    try:
        clean, attacked = await policy.lab_episodes(
            service, choice, client=f"lab:{client_address(request)}", share=fair_share_key(request)
        )
        context.update(clean=clean, attacked=attacked, problem=None)
        context["episodes"] = {"clean": episode_data(clean), "attacked": episode_data(attacked)}
    except ArenaError as error:  # the page still explains the attacks and shows the plot
        context.update(clean=None, attacked=None, problem=error.message, episodes=None)
    context["card"] = agent_card(settings.models_dir)
    return render(request, "pages/policy_lab.html", context)


@router.get("/lab/policy/plot.{fmt}", name="policy_plot")
async def plot(fmt: str, settings: SettingsDep) -> Response:
    """The card's plot of return against budget and against the share of attacked steps, as committed."""
    path = Path(settings.models_dir) / f"{PLOT_STEM}.{fmt}"
    if fmt not in ("png", "svg") or not path.is_file():
        raise NotFound(messages.CHART_UNKNOWN)
    media = "image/png" if fmt == "png" else "image/svg+xml"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "public, max-age=3600"})


@router.get("/lab/policy/play", name="policy_play")
async def play_page(request: Request, player: CookiePlayer, session: SessionDep) -> Response:
    pending = await policy.pending_policy_round(session, player.id) if player is not None else None
    context = {
        "player": player,
        "pending": pending,
        "budgets": policy.BUDGETS,
        "counts": policy.ATTACK_COUNTS,
        "default_budget": policy.DEFAULT_BUDGET,
        "default_count": policy.DEFAULT_COUNT,
        "board": await policy_stats.policy_board(session, limit=10),
        "summary": (await policy_stats.policy_summary(session)).as_dict(),
        "scoring": {"win": policy.WIN_POINTS, "margin": policy.MARGIN_POINTS, "tie": policy.TIE_POINTS},
    }
    return render(request, "pages/policy_play.html", context)


@router.post("/lab/policy/rounds", name="policy_new_round")
async def new_round(
    request: Request,
    player: CookiePlayer,
    session: SessionDep,
    service: ServiceDep,
    budget: Annotated[str, Form(max_length=10)] = str(policy.DEFAULT_BUDGET),
    attacked_steps: Annotated[str, Form(max_length=10)] = str(policy.DEFAULT_COUNT),
    csrf_token_field: CsrfField = None,
) -> Response:
    check_csrf(request, csrf_token_field)
    current = require_player(player)
    setting = policy.check_setting(budget, attacked_steps)
    record = await policy.start_round(
        session, service, player=current, setting=setting, client_key=fair_share_key(request)
    )
    return see_other(str(request.url_for("policy_round", round_id=record.id)))


@router.get("/lab/policy/rounds/{round_id}", name="policy_round")
async def round_page(
    request: Request, round_id: str, player: CookiePlayer, session: SessionDep, service: ServiceDep
) -> Response:
    current = require_player(player)
    record = await policy.player_round(session, player=current, round_id=round_id)
    shown = await policy.round_episodes(service, record, client=current.id, share=fair_share_key(request))
    episodes = {"clean": episode_data(shown.clean)}
    if shown.played is not None and shown.heuristic is not None:
        episodes.update(player=episode_data(shown.played), heuristic=episode_data(shown.heuristic))
    context = {"player": current, "record": record, "shown": shown, "episodes": episodes}
    return render(request, "pages/policy_round.html", context)


@router.post("/lab/policy/rounds/{round_id}/picks", name="policy_picks")
async def picks(
    request: Request,
    round_id: str,
    player: CookiePlayer,
    session: SessionDep,
    service: ServiceDep,
    steps: Annotated[str, Form(max_length=1000)] = "",
    csrf_token_field: CsrfField = None,
) -> Response:
    check_csrf(request, csrf_token_field)
    current = require_player(player)
    record = await policy.player_round(session, player=current, round_id=round_id)
    chosen = policy.parse_picks(steps, record.max_attacked_steps)
    await policy.play_round(
        session, service, player=current, round_id=round_id, picks=chosen, client_key=fair_share_key(request)
    )
    return see_other(str(request.url_for("policy_round", round_id=round_id)))

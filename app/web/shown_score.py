"""The score in every page's header, as the reveal rule lets it show: without points on images still counting
down (app/game/disclosure.py). Worked out before the route runs and read by ``render``: no page route adds points
and then draws a full page in the same request (an answer redirects, or swaps in a fragment that carries its own
score)."""

from __future__ import annotations

from fastapi import Depends, Request

from app.deps import CookiePlayer, SessionDep
from app.game import disclosure


async def note_shown_score(request: Request, session: SessionDep, player: CookiePlayer) -> None:
    if player is not None:
        request.state.score_shown = await disclosure.shown_score(session, player)


def header_score(request: Request, player: object) -> int | None:
    """The header's score for ``player``: the one noted for this request's own player, never the raw one."""
    noted = getattr(request.state, "score_shown", None)
    return noted if noted is not None else getattr(player, "score", None)


SHOWN_SCORE = [Depends(note_shown_score)]  # for the routers whose pages show a player's header

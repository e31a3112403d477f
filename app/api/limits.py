"""Limits on the requests that cost the server. Creating players, events, rounds, cloaks, classifications and
explanations is rate-limited: over a limit the request is refused with 429 and Retry-After before it does any work.
Answer exports stream in a few download slots: beyond them, 503 with Retry-After.

Each costly kind is counted per client address and, once a player is known (their API token or session cookie),
per player. The per-address limit is high, because a workshop room behind one NAT address is one address to the
server: there the per-player limit is the one that holds each player back, and a single client that floods
anonymously (new players, cloaks) still meets the per-address one. Counts live in this process's memory (the
`limits` library's moving windows), like the rest of the live state (app/live.py).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import StreamingResponse
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.background import BackgroundTask

from app import messages
from app.config import Settings
from app.errors import ArenaError

STROKES = "strokes"
# (method, route path) -> the kind of work it starts. Paths are the routes' templates, so ids never matter.
LIMITED_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/players"): "players",
    ("POST", "/join"): "players",
    ("POST", "/join/event"): "players",
    ("POST", "/api/v1/events"): "events",
    ("POST", "/host"): "events",
    ("POST", "/api/v1/rounds"): "rounds",
    ("POST", "/play/rounds"): "rounds",
    ("POST", "/events/{code}/play/rounds"): "rounds",
    ("POST", "/natural/rounds"): "rounds",
    ("POST", "/api/v1/cloak"): "cloaks",
    ("POST", "/cloak"): "cloaks",
    ("POST", "/api/v1/classify"): "classifications",
    ("GET", "/api/v1/rounds/{round_id}/explain"): "explanations",
    ("GET", "/play/rounds/{round_id}/explain"): "explanations",
    ("GET", "/play/rounds/{round_id}/explain/{kind}.{fmt}"): "explanations",
    # the policy lab and pick the moments (issue 19): each runs CartPole episodes on the model worker
    ("GET", "/api/v1/policy/episodes"): "episodes",
    ("GET", "/lab/policy"): "episodes",
    ("POST", "/api/v1/policy/rounds"): "rounds",
    ("POST", "/lab/policy/rounds"): "rounds",
    # Fool the machine yourself (app/game/fool_text): new rounds ask the opponent about several texts, and each live
    # check asks it and the sentence encoder once.
    ("POST", "/fool/text/rounds"): "rounds",
    ("POST", "/api/v1/fool/text/rounds"): "rounds",
    ("POST", "/fool/text/{edit_id}/check"): "text_checks",
    ("POST", "/fool/text/{edit_id}/submit"): "text_checks",
    ("POST", "/api/v1/fool/text/rounds/{edit_id}/check"): "text_checks",
    ("POST", "/api/v1/fool/text/rounds/{edit_id}/submit"): "text_checks",
    # Fool it by hand (app/game/paint_rounds): a new painting looks for an image the opponent gets right; each stroke
    # asks the opponent about the painted image, so strokes have limits of their own (STROKES), sized for a painter's
    # few strokes a second; giving up counts with new paintings, as the two alternate when a player cycles images.
    ("POST", "/api/v1/paint"): "paintings",
    ("POST", "/paint"): "paintings",
    ("POST", "/api/v1/paint/{painting_id}/give-up"): "paintings",
    ("POST", "/api/v1/paint/{painting_id}/strokes"): STROKES,
}
# Kinds whose requests come before there is a player to count them against.
NEW_ACCOUNT_KINDS = frozenset({"players", "events"})


class RateLimited(ArenaError):
    """Too many requests of one kind: retry after ``retry_after_s`` seconds."""

    status_code = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Limits:
    per_address: list[RateLimitItem]
    per_player: list[RateLimitItem]
    new_players: list[RateLimitItem]
    strokes_per_address: list[RateLimitItem]
    strokes_per_player: list[RateLimitItem]

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            per_address=parse_many(settings.rate_limit_per_address),
            per_player=parse_many(settings.rate_limit_per_player),
            new_players=parse_many(settings.rate_limit_new_players),
            strokes_per_address=parse_many(settings.rate_limit_strokes_per_address),
            strokes_per_player=parse_many(settings.rate_limit_strokes_per_player),
        )

    def of_kind(self, kind: str) -> tuple[list[RateLimitItem], list[RateLimitItem]]:
        """The (per-address, per-player) limits of ``kind``."""
        if kind == STROKES:
            return self.strokes_per_address, self.strokes_per_player
        return self.per_address, self.per_player


class RateLimiter:
    """Moving-window counters per (kind, address) and (kind, player), in memory."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.strategy = MovingWindowRateLimiter(MemoryStorage())

    async def check(self, kind: str, *, address: str, player: str | None) -> None:
        """Count one request of ``kind``; RateLimited when any of its limits is already used up."""
        counted: list[tuple[RateLimitItem, str]] = []
        if kind in NEW_ACCOUNT_KINDS:
            counted += [(item, f"address:{address}") for item in self.limits.new_players]
        else:
            per_address, per_player = self.limits.of_kind(kind)
            counted += [(item, f"address:{address}") for item in per_address]
            if player is not None:
                counted += [(item, f"player:{player}") for item in per_player]
        for item, who in counted:
            if not await self.strategy.hit(item, kind, who):
                stats = await self.strategy.get_window_stats(item, kind, who)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimited(messages.RATE_LIMITED.format(seconds=wait), retry_after_s=wait)


def player_key(request: Request) -> str | None:
    """Who the request plays as, without a database read: a digest of the API token, or the session's player."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "token:" + hashlib.sha256(token.strip().encode()).hexdigest()
    player_id = request.session.get("player_id") if "session" in request.scope else None
    return f"id:{player_id}" if isinstance(player_id, str) else None


async def rate_limit(request: Request) -> None:
    """The app-wide dependency: counts the request when its route is a limited one, else does nothing."""
    route = request.scope.get("route")
    kind = LIMITED_ROUTES.get((request.method, getattr(route, "path", "")))
    if kind is None:
        return
    limiter: RateLimiter = request.app.state.rate_limiter
    await limiter.check(kind, address=client_address(request), player=player_key(request))


def client_address(request: Request) -> str:
    """The address the request came from, as the rate limits and the model worker's fair shares count it."""
    return request.client.host if request.client is not None else "unknown"


def fair_share_key(request: Request) -> str:
    """The game's client key for the model worker's fair share: one share per client address."""
    return "address:" + client_address(request)


class DownloadsBusy(ArenaError):
    status_code = 503
    retry_after_s = 5


class DownloadSlots:
    """At most ``limit`` answer exports streaming at once, so slow downloaders cannot crowd out everyone else."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def stream(self, chunks: AsyncIterator[str], *, media_type: str, headers: Mapping[str, str]) -> StreamingResponse:
        """``chunks`` as a response in a slot taken now (DownloadsBusy when none is free). The slot comes back when
        the stream ends, fails or its client goes away, and also if the stream never starts."""
        if self.active >= self.limit:
            raise DownloadsBusy(messages.EXPORTS_BUSY)
        self.active += 1
        held = True

        def give_back() -> None:
            nonlocal held
            if held:
                held = False
                self.active -= 1

        async def in_slot() -> AsyncIterator[str]:
            try:
                async for chunk in chunks:
                    yield chunk
            finally:
                give_back()

        return StreamingResponse(
            in_slot(), media_type=media_type, headers=dict(headers), background=BackgroundTask(give_back)
        )

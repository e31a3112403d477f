"""Request dependencies shared by the HTML and JSON routers, as Annotated aliases."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from types import MappingProxyType
from typing import Annotated, cast

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.config import Settings
from app.db.tables import PlayerRecord
from app.errors import Forbidden, Unauthorized
from app.game import rounds
from app.game.events import Catalog, catalog_from
from app.game.players import player_by_id, player_by_token
from app.live import EventHub
from app.ml.service.contracts import ModelService
from app.ml.service.text_contracts import TEXT_ATTACKS


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request. Routes that change data commit explicitly before they build their reply, so an
    acknowledged answer is always on disk; anything left uncommitted (an error) is rolled back here."""
    async with request.app.state.database.sessionmaker() as session:
        try:
            yield session
        finally:
            if session.in_transaction():
                await session.rollback()


# The dependencies below only read app.state or the request: async, because FastAPI runs a plain ``def`` dependency
# in its thread pool, a thread hop per dependency per request (benchmarks/RESULTS.md, "Prepared rounds: per-request
# cost").
async def get_settings_dep(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def get_model_service(request: Request) -> ModelService:
    return cast(ModelService, request.app.state.model_service)


async def get_hub(request: Request) -> EventHub:
    return cast(EventHub, request.app.state.hub)


async def get_catalog(request: Request) -> Catalog:
    """What an event may use: the opponents the model service has loaded and, for each, the attacks a round can
    play against it (``rounds.playable_in_rounds``); and its text opponents (pack ``definitions``) with the text
    attacks. Asked of the service each time, so new ones appear without changes here (and without torch in the web
    process)."""
    service: ModelService = request.app.state.model_service
    loaded = service.opponent_names()
    playable = {name: rounds.playable_attacks(service, service.opponent_info(name)) for name in loaded}
    packs = {name: service.opponent_info(name).pack for name in loaded}
    listing = getattr(service, "text_opponents", None)
    for info in await listing() if listing is not None else ():
        playable[info.name], packs[info.name] = list(TEXT_ATTACKS), info.pack
    every = sorted({attack for names in playable.values() for attack in names})
    return catalog_from(list(packs), every, packs.__getitem__, playable)


# Declared as HTTP Bearer security schemes, so the OpenAPI spec says how to authenticate and Swagger UI's "Try it
# out" can send a token. auto_error=False: the routes answer a missing or wrong token themselves, as before.
player_bearer = HTTPBearer(
    scheme_name="PlayerToken", description="The `token` POST /api/v1/players returns", auto_error=False
)
host_bearer = HTTPBearer(
    scheme_name="HostToken", description="The `host_token` POST /api/v1/events returns", auto_error=False
)


def stripped_token(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    token = credentials.credentials.strip() if credentials is not None else ""
    return token or None


async def host_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(host_bearer)]) -> str | None:
    return stripped_token(credentials)


admin_bearer = HTTPBearer(
    scheme_name="AdminToken", description="ARENA_ADMIN_TOKEN: /healthz's details off this machine", auto_error=False
)


async def admin_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)]) -> str | None:
    return stripped_token(credentials)


SessionDep = Annotated[AsyncSession, Depends(get_session)]
HubDep = Annotated[EventHub, Depends(get_hub)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
HostToken = Annotated[str | None, Depends(host_token)]
AdminToken = Annotated[str | None, Depends(admin_token)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
ServiceDep = Annotated[ModelService, Depends(get_model_service)]


async def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


HxRequest = Annotated[bool, Depends(is_htmx)]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    session: object = request.session  # typed as a dict by Starlette; the skipped requests' one is read-only
    if not token and isinstance(session, MappingProxyType):
        # A request the session middleware skipped (a round image, say: app/web/session_cookie.py) has no session to
        # keep a token in; the error page it may get has no form to protect.
        return ""
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get("csrf")
    # compared as bytes: compare_digest refuses str with non-ASCII characters (a forged token would be a 500)
    if not expected or not submitted or not secrets.compare_digest(str(expected).encode(), submitted.encode()):
        raise Forbidden(messages.CSRF_FAILED)


async def optional_cookie_player(request: Request, session: SessionDep) -> PlayerRecord | None:
    player_id = request.session.get("player_id")
    if not player_id:
        return None
    player = await player_by_id(session, str(player_id))
    if player is None:
        request.session.pop("player_id", None)
    return player


CookiePlayer = Annotated[PlayerRecord | None, Depends(optional_cookie_player)]


async def api_player(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(player_bearer)],
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> PlayerRecord:
    """Scripts authenticate with `Authorization: Bearer <token>`. A browser may use its session cookie instead,
    but then state-changing calls must carry the page's CSRF token in X-CSRF-Token."""
    if request.headers.get("authorization"):
        token = stripped_token(credentials)
        if token is None:  # another scheme, or an empty token
            raise Unauthorized(messages.TOKEN_INVALID)
        return await player_by_token(session, token)
    player = await optional_cookie_player(request, session)
    if player is None:
        raise Unauthorized(messages.PLAYER_REQUIRED)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        check_csrf(request, x_csrf_token)
    return player


ApiPlayer = Annotated[PlayerRecord, Depends(api_player)]

"""The signed session cookie (the player, the CSRF token, the events this browser hosts) and the key that signs it.

The built-in secret key is public (it is in this repository), so a cookie signed with it can be forged by anyone.
`arena serve` off loopback replaces it with a kept random key; ``session_cookies`` makes a server started any other
way (``uvicorn --factory --host 0.0.0.0``, a container) just as safe: with the built-in key, only requests that
reach the server on loopback use it, and every other one gets cookies signed with the kept random key.

Requests that cannot use a session skip the cookie middleware (``without_session``): a JSON API call with a bearer
token and no session cookie (app/deps.api_player and the rate limits read the session only without a token), a
static file or a round's image (their routes never touch it). No cookie is read, signed or sent for them, so the
rules above do not change; they see an empty session that cannot be written, as a request without a cookie would."""

from __future__ import annotations

import re
from types import MappingProxyType

from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import DEFAULT_SECRET, Settings
from app.web import room

SESSION_COOKIE = "arena_session"
MAX_AGE_S = 60 * 60 * 24 * 30
PROXY_HEADERS = (b"forwarded", b"x-forwarded-for")  # a proxy on this machine relays clients from anywhere
SESSION_COOKIE_SET = SESSION_COOKIE.encode() + b"="  # in a Cookie header: the browser holds a session
ROUND_IMAGE = re.compile(r"/rounds/[^/]+/[^/]+\.png")  # app/web/routes.round_image, which never reads the session
EMPTY_SESSION: MappingProxyType[str, object] = MappingProxyType({})  # a write fails loudly instead of being lost


def signed_with(app: ASGIApp, secret_key: str, *, https_only: bool) -> SessionMiddleware:
    return SessionMiddleware(
        app,
        secret_key=secret_key,
        session_cookie=SESSION_COOKIE,
        same_site="lax",
        https_only=https_only,
        max_age=MAX_AGE_S,
    )


def arrived_on_loopback(scope: Scope) -> bool:
    """True when both ends of the connection are this machine and no proxy relayed it."""
    server, client = scope.get("server"), scope.get("client")
    if not server or not client or any(name in PROXY_HEADERS for name, _ in scope.get("headers", ())):
        return False
    return room.is_loopback_host(str(server[0])) and room.is_loopback_host(str(client[0]))


class BuiltInKeyOnLoopbackOnly:
    """Session cookies of a server configured with the built-in key: that key on loopback, the kept random key
    (made on the first request from elsewhere) for every other request."""

    def __init__(self, app: ASGIApp, *, https_only: bool) -> None:
        self.app = app
        self.https_only = https_only
        self.on_loopback = signed_with(app, DEFAULT_SECRET, https_only=https_only)
        self.elsewhere: SessionMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or arrived_on_loopback(scope):
            await self.on_loopback(scope, receive, send)
            return
        if self.elsewhere is None:
            self.elsewhere = signed_with(self.app, room.kept_secret_key(), https_only=self.https_only)
        await self.elsewhere(scope, receive, send)


def bearer_token_in(header: bytes) -> bool:
    """True when an Authorization header carries a bearer token, as app/deps.api_player and the rate limits read it."""
    scheme, _, token = header.decode("latin-1").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def without_session(scope: Scope) -> bool:
    """True for a request that has no session cookie and goes where nothing reads the session: an API call with a
    bearer token, a static file, a round image."""
    path: str = scope.get("path", "")
    api = path.startswith("/api/")
    if not api and not path.startswith("/static/") and ROUND_IMAGE.fullmatch(path) is None:
        return False
    authorization: bytes | None = None
    for name, value in scope.get("headers", ()):
        if name == b"cookie" and SESSION_COOKIE_SET in value:
            return False
        if name == b"authorization" and authorization is None:
            authorization = value
    return not api or (authorization is not None and bearer_token_in(authorization))


class SkipSessionWhereUnused:
    """Hands requests that cannot use a session (``without_session``) straight to the app, with EMPTY_SESSION."""

    def __init__(self, app: ASGIApp, with_cookies: ASGIApp) -> None:
        self.app = app
        self.with_cookies = with_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and without_session(scope):
            scope["session"] = EMPTY_SESSION
            await self.app(scope, receive, send)
            return
        await self.with_cookies(scope, receive, send)


def session_cookies(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` behind the session cookie middleware its settings call for."""
    secret_key = settings.secret_key.get_secret_value()
    if secret_key == DEFAULT_SECRET:
        with_cookies: ASGIApp = BuiltInKeyOnLoopbackOnly(app, https_only=settings.cookie_secure)
    else:
        with_cookies = signed_with(app, secret_key, https_only=settings.cookie_secure)
    return SkipSessionWhereUnused(app, with_cookies)

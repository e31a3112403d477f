"""The signed session cookie (the player, the CSRF token, the events this browser hosts) and the key that signs it.

The built-in secret key is public (it is in this repository), so a cookie signed with it can be forged by anyone.
`arena serve` off loopback replaces it with a kept random key; ``session_cookies`` makes a server started any other
way (``uvicorn --factory --host 0.0.0.0``, a container) just as safe: with the built-in key, only requests that
reach the server on loopback use it, and every other one gets cookies signed with the kept random key."""

from __future__ import annotations

from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import DEFAULT_SECRET, Settings
from app.web import room

SESSION_COOKIE = "arena_session"
MAX_AGE_S = 60 * 60 * 24 * 30
PROXY_HEADERS = (b"forwarded", b"x-forwarded-for")  # a proxy on this machine relays clients from anywhere


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


def session_cookies(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` behind the session cookie middleware its settings call for."""
    secret_key = settings.secret_key.get_secret_value()
    if secret_key == DEFAULT_SECRET:
        return BuiltInKeyOnLoopbackOnly(app, https_only=settings.cookie_secure)
    return signed_with(app, secret_key, https_only=settings.cookie_secure)

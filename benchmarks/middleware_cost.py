"""What the middleware layers cost one request, in process, side by side: Starlette's BaseHTTPMiddleware (what
``@app.middleware("http")`` builds) against the pure ASGI SecurityHeaders, and the session cookie middleware
against its skip for a bearer-token API call (app/web/session_cookie.py). Each wraps the same trivial endpoint;
the figure is the time per request minus nothing (the bare endpoint's own time is printed first).

Usage: python benchmarks/middleware_cost.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.web.security_headers import SecurityHeaders
from app.web.session_cookie import session_cookies

HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"authorization", b"Bearer some-player-token"),
    (b"content-type", b"application/json"),
    (b"accept", b"*/*"),
    (b"user-agent", b"python-httpx/0.28"),
]
SCOPE = {
    "type": "http",
    "method": "POST",
    "path": "/api/v1/rounds",
    "headers": HEADERS,
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 50000),
    "query_string": b"",
    "root_path": "",
    "scheme": "http",
    "http_version": "1.1",
}


async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


class HeadersByBaseHTTPMiddleware(BaseHTTPMiddleware):
    """The security headers as main had them: ``@app.middleware("http")``."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Message) -> None:
    return None


async def per_request_us(app: ASGIApp, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        await app(dict(SCOPE), receive, send)
    return (time.perf_counter() - started) / requests * 1e6


async def run(requests: int) -> list[tuple[str, float]]:
    settings = Settings(environment="test", secret_key="bench-secret-key-not-for-production")
    cookie_only = session_cookies(endpoint, settings)
    return [
        ("bare endpoint", await per_request_us(endpoint, requests)),
        ("BaseHTTPMiddleware (before)", await per_request_us(HeadersByBaseHTTPMiddleware(endpoint), requests // 4)),
        ("SecurityHeaders, pure ASGI (after)", await per_request_us(SecurityHeaders(endpoint), requests)),
        ("SessionMiddleware, no cookie (before)", await per_request_us(cookie_only.with_cookies, requests)),  # type: ignore[attr-defined]
        ("session skip for a bearer call (after)", await per_request_us(cookie_only, requests)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    print(f"load average before {os.getloadavg()[0]:.2f}")
    rows = asyncio.run(run(args.requests))
    for name, micros in rows:
        print(f"{name:42s} {micros:8.1f} µs per request")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

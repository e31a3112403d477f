"""Every response carries the security headers (no sniffing, no framing, same-origin referrers, the CSP), whatever
produced it: a page, a static file, a JSON reply, an error, a round's image. They are added by a pure ASGI
middleware, not Starlette's BaseHTTPMiddleware (a task group and a memory stream per request)."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.types import Message, Receive, Scope, Send

from app.main import create_app
from app.web.security_headers import CONTENT_SECURITY_POLICY, SecurityHeaders
from tests.conftest import make_settings
from tests.helpers import auth, new_player, new_round

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "content-security-policy": CONTENT_SECURITY_POLICY,
}


def assert_secured(headers: object, what: str) -> None:
    for name, value in EXPECTED.items():
        assert headers[name] == value, f"{what}: {name}"  # type: ignore[index]


def test_every_kind_of_response_carries_the_security_headers(client: TestClient) -> None:
    player = new_player(client)
    created = client.post("/api/v1/players", json={"nickname": "second"})
    assert created.status_code == 201
    assert_secured(created.headers, "JSON reply")
    round_ = new_round(client, player)
    image = client.get(round_["image_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert_secured(image.headers, "round image")
    refused = client.post("/api/v1/rounds", headers={"Authorization": "Bearer not-a-token"})
    assert refused.status_code == 401
    assert_secured(refused.headers, "JSON error")
    missing = client.get("/rounds/nope/original.png")
    assert missing.status_code == 404
    assert_secured(missing.headers, "404")
    page = client.get("/about")
    assert page.status_code == 200
    assert_secured(page.headers, "HTML page")
    static = client.get("/static/paint.css")
    assert static.status_code == 200
    assert_secured(static.headers, "static file")
    answered = client.post(round_["answer_url"], headers=auth(player), json={"choice": round_["choices"][0]})
    assert answered.status_code == 200
    assert_secured(answered.headers, "answer")


def test_no_base_http_middleware_in_the_stack() -> None:
    app = create_app(make_settings("sqlite://"))
    classes = [m.cls for m in app.user_middleware if isinstance(m.cls, type)]
    assert not [cls for cls in classes if issubclass(cls, BaseHTTPMiddleware)]
    assert any(m.cls is SecurityHeaders for m in app.user_middleware)


def test_a_header_the_route_set_itself_is_kept_and_each_is_added_once() -> None:
    sent: list[Message] = []

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/plain"), (b"X-Frame-Options", b"SAMEORIGIN")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(SecurityHeaders(route)({"type": "http", "path": "/", "headers": []}, receive, send))
    names = [name.lower() for name, _ in sent[0]["headers"]]
    assert sorted(names) == sorted([b"content-type", *(name.encode() for name in EXPECTED)])
    assert dict((name.lower(), value) for name, value in sent[0]["headers"])[b"x-frame-options"] == b"SAMEORIGIN"
    assert sent[1] == {"type": "http.response.body", "body": b"ok"}

"""The session cookie of a server started with the built-in secret key, however it was started (uvicorn --factory
--host 0.0.0.0, a container): nobody who reaches it from elsewhere than loopback can forge a cookie with that
public key, and a request on loopback keeps working as before. Lifespan is not run: no page here needs
the model service."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import itsdangerous
import pytest
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from app.config import DEFAULT_SECRET, Settings
from app.db.session import open_database
from app.main import create_app
from app.web import room
from app.web.session_cookie import EMPTY_SESSION, session_cookies, without_session

LAN = {"base_url": "http://192.168.1.20:8000", "client": ("192.168.1.33", 50000)}
LOOPBACK = {"base_url": "http://127.0.0.1:8000", "client": ("127.0.0.1", 50000)}


def forged_cookie(secret: str, session: dict[str, str]) -> str:
    data = base64.b64encode(json.dumps(session).encode())
    return itsdangerous.TimestampSigner(secret).sign(data).decode()


@pytest.fixture
def built_in_key_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setattr(room, "SECRET_KEY_FILE", tmp_path / "var" / "secret_key")
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    app = create_app(Settings(environment="test", database_url=url))
    app.state.database = open_database(url)  # pages without a player never query it
    return app


def leave_with(app: object, where: dict[str, object], cookie: str) -> int:
    client = TestClient(app, **where)  # type: ignore[arg-type]
    client.cookies.set("arena_session", cookie)
    reply = client.post(
        "/leave", data={"csrf_token": "forged"}, headers={"Accept": "text/html"}, follow_redirects=False
    )
    return reply.status_code


def test_off_loopback_a_cookie_forged_with_the_built_in_key_is_worthless(built_in_key_app: object) -> None:
    forged = forged_cookie(DEFAULT_SECRET, {"csrf": "forged"})
    assert leave_with(built_in_key_app, LAN, forged) == 403, "the forged session (and its CSRF token) is ignored"
    assert leave_with(built_in_key_app, LOOPBACK, forged) == 303, "on loopback the built-in key still signs"


def test_off_loopback_cookies_are_signed_with_the_kept_random_key(built_in_key_app: object) -> None:
    client = TestClient(built_in_key_app, **LAN)  # type: ignore[arg-type]
    client.post("/leave", data={"csrf_token": "x"}, headers={"Accept": "text/html"})
    client.get("/about")
    cookie = client.cookies["arena_session"]
    with pytest.raises(itsdangerous.BadSignature):
        itsdangerous.TimestampSigner(DEFAULT_SECRET).unsign(cookie)
    itsdangerous.TimestampSigner(room.SECRET_KEY_FILE.read_text().strip()).unsign(cookie)


def test_behind_a_proxy_on_this_machine_the_built_in_key_is_refused_too(built_in_key_app: object) -> None:
    forged = forged_cookie(DEFAULT_SECRET, {"csrf": "forged"})
    client = TestClient(built_in_key_app, **LOOPBACK)  # type: ignore[arg-type]
    client.cookies.set("arena_session", forged)
    reply = client.post(
        "/leave",
        data={"csrf_token": "forged"},
        headers={"Accept": "text/html", "X-Forwarded-For": "203.0.113.9"},
        follow_redirects=False,
    )
    assert reply.status_code == 403


def http_scope(path: str, *headers: tuple[bytes, bytes]) -> dict[str, object]:
    return {"type": "http", "path": path, "headers": list(headers), "server": ("127.0.0.1", 8000)}


BEARER = (b"authorization", b"Bearer some-token")
WITH_COOKIE = (b"cookie", b"theme=dark; arena_session=abc.def")


def test_only_requests_that_cannot_use_a_session_skip_the_cookie_middleware() -> None:
    assert without_session(http_scope("/api/v1/rounds", BEARER))
    assert without_session(http_scope("/static/css/arena.css"))
    assert without_session(http_scope("/rounds/0123abcd/adversarial.png"))
    # a browser's API call signs in with its cookie, and a request without a token may too (app/deps.api_player)
    assert not without_session(http_scope("/api/v1/rounds", BEARER, WITH_COOKIE))
    assert not without_session(http_scope("/api/v1/rounds"))
    assert not without_session(http_scope("/api/v1/rounds", (b"authorization", b"Bearer  ")))
    assert not without_session(http_scope("/api/v1/rounds", (b"authorization", b"Basic dXNlcjpwdw==")))
    assert not without_session(http_scope("/rounds/0123abcd/adversarial.png", WITH_COOKIE))
    # pages read and write the session: never skipped
    assert not without_session(http_scope("/play", BEARER))
    assert not without_session(http_scope("/play/rounds/0123abcd", BEARER))
    assert not without_session(http_scope("/join"))


def test_a_skipped_request_sees_an_empty_session_it_cannot_write(tmp_path: Path) -> None:
    seen: list[object] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["session"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    wrapped = session_cookies(app, Settings(environment="test", database_url=f"sqlite:///{tmp_path / 'a.db'}"))
    client = TestClient(wrapped, **LOOPBACK)  # type: ignore[arg-type]
    assert "set-cookie" not in client.get("/api/v1/rounds", headers={"Authorization": "Bearer t"}).headers
    assert seen[-1] is EMPTY_SESSION and not seen[-1]
    with pytest.raises(TypeError):
        EMPTY_SESSION["player_id"] = "x"  # type: ignore[index]
    client.get("/api/v1/rounds")  # no token: the cookie middleware's own session, as before
    assert seen[-1] is not EMPTY_SESSION


def test_off_loopback_a_forged_cookie_is_still_refused_on_the_api(built_in_key_app: object) -> None:
    forged = forged_cookie(DEFAULT_SECRET, {"player_id": "someone"})
    client = TestClient(built_in_key_app, **LAN)  # type: ignore[arg-type]
    client.cookies.set("arena_session", forged)
    reply = client.get("/api/v1/rounds/anything", headers={"Accept": "*/*"})
    assert reply.status_code == 401, "the forged session names nobody: no player is even looked up"

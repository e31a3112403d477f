"""When every database connection is taken, a request gets 503 with Retry-After (nothing was written), not a 500."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app import messages
from app.db.session import open_database
from tests.helpers import auth, new_player
from tests.web.events.builders import swap_cookies


class ExhaustedPool:
    """Stands in for the sessionmaker while every pooled connection is checked out."""

    def __call__(self) -> ExhaustedPool:
        return self

    async def __aenter__(self) -> None:
        raise PoolTimeout("QueuePool limit of size 10 overflow 20 reached, connection timed out, timeout 10.00")

    async def __aexit__(self, *exc: object) -> None:
        return None


def test_an_exhausted_pool_answers_503_with_retry_after(client: TestClient) -> None:
    player = new_player(client)
    database = client.app.state.database
    real = database.sessionmaker
    database.sessionmaker = ExhaustedPool()
    try:
        api = client.post("/api/v1/rounds", headers=auth(player))
        page = client.get("/leaderboard", headers={"accept": "text/html"})
    finally:
        database.sessionmaker = real
    assert api.status_code == 503 and api.headers["retry-after"] == "2"
    assert api.json()["detail"] == messages.DATABASE_BUSY
    assert page.status_code == 503 and "try again" in page.text
    assert client.post("/api/v1/rounds", headers=auth(player)).status_code == 201, "back to normal afterwards"


def test_a_database_that_refuses_connections_answers_503_not_500(client: TestClient, tmp_path: Path) -> None:
    """PostgreSQL at max_connections refuses at connect ("too many clients"): nothing was written, so 503 + retry."""
    database = client.app.state.database
    player = new_player(client)
    real_url = database.engine.url
    if real_url.get_backend_name() == "sqlite":
        refusing_url = f"sqlite+aiosqlite:///{tmp_path}"  # a folder: SQLite cannot open it
    else:  # a database that does not exist: the server answers FATAL at connect, as it does when it is full
        refusing_url = make_url(str(real_url)).set(database="arena_no_such_database").render_as_string(False)
    refusing = open_database(refusing_url)
    real = database.sessionmaker
    database.sessionmaker = refusing.sessionmaker
    try:
        api = client.post("/api/v1/rounds", headers=auth(player))
        page = client.get("/leaderboard", headers={"accept": "text/html"})
    finally:
        database.sessionmaker = real
        client.portal.call(refusing.dispose)  # type: ignore[union-attr]
    assert api.status_code == 503 and api.headers["retry-after"] == "2"
    assert api.json()["detail"] == messages.DATABASE_BUSY
    assert page.status_code == 503 and "try again" in page.text
    assert client.post("/api/v1/rounds", headers=auth(player)).status_code == 201, "back to normal afterwards"


def test_a_round_image_without_a_session_gets_the_busy_page_not_a_500(client: TestClient) -> None:
    """A round image skips the session middleware; its error page, as HTML for a client that asks none in particular,
    must not try to keep a form token in the session it does not have."""
    player = new_player(client)
    created = client.post("/api/v1/rounds", headers=auth(player)).json()
    jar = swap_cookies(client, [])
    database = client.app.state.database
    real = database.sessionmaker
    database.sessionmaker = ExhaustedPool()
    try:
        image = client.get(created["image_url"], headers={"accept": "text/html"})
    finally:
        database.sessionmaker = real
        swap_cookies(client, jar)
    assert image.status_code == 503 and image.headers["retry-after"] == "2"
    assert "try again" in image.text

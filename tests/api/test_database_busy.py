"""When every database connection is taken, a request gets 503 with Retry-After (nothing was written), not a 500."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app import messages
from tests.helpers import auth, new_player


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

"""Shared fixtures: real databases (SQLite file and the PostgreSQL server), the real model service and app.

PostgreSQL is not optional: a missing server fails the run (set ARENA_TEST_SKIP_POSTGRES=1 to skip it on a
laptop without one; CI never sets it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app.config import Settings
from app.db import migrate
from app.main import create_app
from tests.helpers import ADMIN_TOKEN

# The ImageNet fixtures (one engine, one live cloak app) serve tests in ml/, web/ and browser/.
pytest_plugins = ["tests.imagenet"]

POSTGRES_URL = os.environ.get("ARENA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SKIP_POSTGRES = os.environ.get("ARENA_TEST_SKIP_POSTGRES") == "1" and os.environ.get("CI") != "true"
TABLES = (
    "paint_strokes",
    "paintings",
    "smallest_attacks",
    "policy_rounds",
    "text_validations",
    "text_edits",
    "stock_images",
    "answers",
    "rounds",
    "shared_rounds",
    "players",
    "events",
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres" in item.keywords and SKIP_POSTGRES:
            item.add_marker(pytest.mark.skip(reason="ARENA_TEST_SKIP_POSTGRES=1"))
    # Playwright's sync API keeps an event loop running in the main thread while its browser lives, which
    # would stop the async (anyio) tests from starting theirs: browser tests go last.
    items.sort(key=lambda item: "browser" in item.keywords)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def reset_postgres(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    except Exception as error:  # make the cause obvious in CI
        pytest.fail(f"PostgreSQL at {url} is not usable: {error}", pytrace=False)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    reset_postgres(POSTGRES_URL)
    migrate.upgrade(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'arena.db'}"
    migrate.upgrade(url)
    return url


def empty_tables(url: str) -> None:
    from app.db.session import sync_url

    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test gets empty tables on the backend; the schema comes from the real migrations."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    empty_tables(url)
    yield url
    empty_tables(url)


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": database_url,
        "secret_key": "test-secret-key-not-for-production",
        "admin_token": ADMIN_TOKEN,
        "device": "cpu",
        "torch_threads": 1,
        "service_max_wait_ms": 2.0,
        # No rounds made ahead: tests count the model service's jobs and pick images; tests/game/test_pool.py and
        # benchmarks/pool_latency.py cover the pool.
        "ready_rounds": 0,
        # The suite's shared apps serve hundreds of players from one test client; tests/api/test_rate_limits.py
        # sets the limits it checks.
        "rate_limit_per_address": "100000/minute",
        "rate_limit_per_player": "100000/minute",
        "rate_limit_new_players": "100000/minute",
        "rate_limit_strokes_per_address": "100000/minute",
        "rate_limit_strokes_per_player": "100000/minute",
        # Nor in the background for events: tests prepare an event's stock when they mean to (tests/game/events).
        "stock_interval_s": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


# -- a live app (real model service, real database) per backend, shared by the API and web tests --------------

_clients: dict[str, TestClient] = {}


@pytest.fixture(scope="session")
def _client_pool() -> Iterator[dict[str, TestClient]]:
    yield _clients
    for client in _clients.values():
        client.__exit__(None, None, None)
    _clients.clear()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def client(request: pytest.FixtureRequest, _client_pool: dict[str, TestClient]) -> Iterator[TestClient]:
    """A TestClient on empty tables. The app (and its model service) is started once per backend."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    if url not in _client_pool:
        test_client = TestClient(create_app(make_settings(url)), base_url="http://testserver")
        test_client.__enter__()
        _client_pool[url] = test_client
    test_client = _client_pool[url]
    empty_tables(url)
    test_client.cookies.clear()
    yield test_client
    test_client.cookies.clear()

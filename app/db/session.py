"""Engine and session factory. Nothing connects at import time: :func:`open_database` is called by the app's
lifespan, the CLI and the tests, each with the URL it wants."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

logger = logging.getLogger(__name__)


def async_url(url: str) -> str:
    """Map the user-facing URL (``sqlite:///…``, ``postgresql://…``) to the async driver we run on."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL {parsed.render_as_string()!r}: use sqlite:/// or postgresql://")


def sync_url(url: str) -> str:
    """The URL for synchronous tools (Alembic) on the same database."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return parsed.set(drivername="sqlite").render_as_string(hide_password=False)


def ensure_sqlite_folder(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes concurrent writers wait instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine_for(url: str, **kwargs: Any) -> AsyncEngine:
    ensure_sqlite_folder(url)
    target = async_url(url)
    if target.startswith("sqlite"):
        engine = create_async_engine(target, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20, "pool_recycle": 1800}
    options.update(kwargs)
    return create_async_engine(target, **options)


@dataclass
class Database:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    async def dispose(self) -> None:
        await self.engine.dispose()

    async def reachable(self) -> bool:
        """Whether a connection opens and answers (health checks); why not is logged, never returned."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("select 1"))
        except Exception:
            logger.exception("health check: database unreachable")
            return False
        return True


def open_database(url: str, **engine_kwargs: Any) -> Database:
    engine = create_engine_for(url, **engine_kwargs)
    return Database(engine=engine, sessionmaker=async_sessionmaker(engine, expire_on_commit=False))


@asynccontextmanager
async def connection_released(session: AsyncSession, *reload: object) -> AsyncIterator[None]:
    """Give the session's connection back to the pool during a long wait (a round's attack when the room is busy),
    so that a hundred waiting players do not starve everyone else of connections; ``reload`` is read again
    afterwards. Only a session that has written nothing in this transaction lets go: ending it is a rollback,
    which loses nothing but expires what was loaded."""
    release = not (session.new or session.dirty or session.deleted)
    if release:
        await session.rollback()
    yield
    if release:
        for instance in reload:
            await session.refresh(instance)

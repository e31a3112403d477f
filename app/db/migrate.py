"""Run Alembic from code, so that `arena db upgrade`, the app and the tests share one path."""

from __future__ import annotations

import time
from pathlib import Path

from alembic.config import Config
from sqlalchemy import create_engine, text

from alembic import command
from app.config import PROJECT_ROOT
from app.db.session import ensure_sqlite_folder, sync_url


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(Path(PROJECT_ROOT) / "alembic"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    ensure_sqlite_folder(database_url)
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def wait_for_database(database_url: str, *, timeout_s: float = 60.0, interval_s: float = 1.0) -> None:
    """Retry `select 1` until the database answers, so start-up survives a database that is still booting."""
    ensure_sqlite_folder(database_url)
    deadline = time.monotonic() + timeout_s
    engine = create_engine(sync_url(database_url))
    try:
        while True:
            try:
                with engine.connect() as conn:
                    conn.execute(text("select 1"))
                return
            except Exception:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(interval_s)
    finally:
        engine.dispose()

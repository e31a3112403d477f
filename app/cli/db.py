"""`arena db`: the schema (Alembic migrations) and waiting for the database at container start-up."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import fail, setup_logging
from app.config import get_settings

db_app = typer.Typer(help="Database schema and maintenance.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply the Alembic migrations to ARENA_DATABASE_URL."""
    from app.db import migrate as migrations  # Alembic and SQLAlchemy take seconds; `arena --help` need not

    setup_logging()
    migrations.upgrade(get_settings().database_url, revision)
    typer.echo(f"database at revision {revision}")


@db_app.command("wait")
def db_wait(timeout: Annotated[float, typer.Option(help="Seconds to keep trying.")] = 60.0) -> None:
    """Wait until the database answers (for container start-up)."""
    from app.db import migrate as migrations  # Alembic and SQLAlchemy take seconds; `arena --help` need not

    try:
        migrations.wait_for_database(get_settings().database_url, timeout_s=timeout)
    except Exception as error:
        fail(f"database not reachable after {timeout:.0f} s: {error}")
    typer.echo("database is up")

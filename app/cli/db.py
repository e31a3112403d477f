"""`arena db`: the schema (Alembic migrations) and waiting for the database at container start-up."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import fail
from app.config import get_settings

db_app = typer.Typer(help="Database schema and maintenance.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply the Alembic migrations to ARENA_DATABASE_URL."""
    from app.db import migrate as migrations  # Alembic and SQLAlchemy take seconds; `arena --help` need not

    migrations.upgrade(get_settings().database_url, revision)
    typer.echo(f"database at revision {revision}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's Alembic revision and whether it is the newest (the head)."""
    # Alembic and SQLAlchemy take seconds; `arena --help` need not.
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    from app.db import migrate as migrations
    from app.db.session import sync_url

    database_url = get_settings().database_url
    heads = set(ScriptDirectory.from_config(migrations.alembic_config(database_url)).get_heads())
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except OperationalError as error:
        fail(f"database not reachable: {error.orig}")
    finally:
        engine.dispose()
    if not current:
        typer.echo(f"database has no revision (empty); the head is {', '.join(sorted(heads))}: run `arena db upgrade`")
    elif current == heads:
        typer.echo(f"database at revision {', '.join(sorted(current))} (the head)")
    else:
        typer.echo(
            f"database at revision {', '.join(sorted(current))}, not the head ({', '.join(sorted(heads))}): "
            "run `arena db upgrade`"
        )


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[
        str, typer.Argument(help="Target revision: an id, base (no tables), or -1 (one back; write `-- -1`).")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Undo Alembic migrations on ARENA_DATABASE_URL down to REVISION; the later migrations' tables and columns,
    and the data in them, are dropped."""
    from sqlalchemy.engine import make_url  # SQLAlchemy takes a second to import; `arena --help` need not

    from app.db import migrate as migrations  # Alembic takes seconds; `arena --help` need not

    database_url = get_settings().database_url
    if not yes:
        shown = make_url(database_url).render_as_string(hide_password=True)
        typer.confirm(f"Downgrade {shown} to {revision}? Data in what the later migrations added is lost.", abort=True)
    migrations.downgrade(database_url, revision)
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

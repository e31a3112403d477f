"""`arena export`: every answer as CSV, JSON or JSON lines, or the research bundle as a zip."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.progress import Progress

from app.cli.common import fail, failing_cleanly
from app.config import get_settings
from app.errors import NotFound

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.stats.bundle.build import BundleSummary

# The answers export's formats (app/stats/export.py: EXPORT_FORMATS) and the bundle; spelled here, as the stats
# module loads the database layer and `arena --help` need not.
ExportFormat = Literal["csv", "json", "jsonl", "zip"]


def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write; '-' for standard output.")] = Path("-"),
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="zip: the research bundle.")] = "csv",
    event: Annotated[str | None, typer.Option("--event", help="Only this event (its join code).")] = None,
) -> None:
    """Export every answer (human and machine) with its round, one row per answer. --format zip writes the research
    bundle: images, answers.csv, rounds.csv, metadata.json, DATASHEET.md and a recompute.py
    (app/stats/bundle/build.py)."""
    # The database layer and the packs (numpy) take seconds to import; `arena --help` need not.
    from app.stats import export as exporting
    from app.stats.text import pack_class_names

    if fmt == "zip":
        export_zip(output, event)
        return

    async def run() -> None:
        stream = sys.stdout if str(output) == "-" else output.open("w", encoding="utf-8", newline="")
        try:
            async with database_session() as session:
                event_id = None if event is None else await event_id_of(session, event)
                names = pack_class_names  # the text pack's too (app/stats/text.py)
                pages = exporting.one_session(session)
                async for chunk in exporting.stream_answers(pages, fmt, names, event_id=event_id):
                    stream.write(chunk)
        finally:
            if stream is not sys.stdout:
                stream.close()

    asyncio.run(run())
    if str(output) != "-":
        typer.echo(f"wrote the answers export ({fmt}) to {output}", err=True)


def export_zip(output: Path, event: str | None) -> None:
    """The research bundle, with a progress bar; written to a temporary file and moved into place when complete."""
    # The database layer and the packs (numpy) take seconds to import; `arena --help` need not.
    from app.stats.bundle import build as bundle
    from app.stats.text import pack_class_names
    from app.stats.trials import StatsFilter

    if str(output) == "-":
        output = Path(f"arena-dataset-{datetime.now(UTC):%Y%m%d-%H%M%S}.zip")

    async def run() -> BundleSummary:
        async with database_session() as session:
            event_id = None if event is None else await event_id_of(session, event)
            with Progress(transient=True) as progress:
                task = progress.add_task("exporting rounds", total=None)
                return await bundle.write_bundle(
                    session,
                    output,
                    filters=StatsFilter(event_id=event_id),
                    filter_labels={"event": event.upper() if event else None},
                    class_names_of=pack_class_names,
                    on_start=lambda total: progress.update(task, total=total),
                    on_advance=lambda n: progress.advance(task, n),
                )

    with failing_cleanly(interrupted="no bundle was written"):
        done = asyncio.run(run())
    typer.echo(
        f"wrote {done.path}: {done.answers} answers, {done.rounds} rounds, {done.images} images, "
        f"{done.players} people ({done.bytes / 1e6:.1f} MB)",
        err=True,
    )


@asynccontextmanager
async def database_session() -> AsyncIterator[AsyncSession]:
    """A session on ARENA_DATABASE_URL; the engine is disposed afterwards (the command runs once)."""
    from app.db.session import open_database  # SQLAlchemy takes a second to import; `arena --help` need not

    database = open_database(get_settings().database_url)
    try:
        async with database.sessionmaker() as session:
            yield session
    finally:
        await database.dispose()


async def event_id_of(session: AsyncSession, code: str) -> str:
    from app.game.events import event_by_code  # loads the database layer; `arena --help` need not

    try:
        return (await event_by_code(session, code)).id
    except NotFound as error:
        fail(f"{error.message} (--event {code!r})")

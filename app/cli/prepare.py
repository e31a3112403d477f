"""`arena prepare`: make an event's stock of rounds (rounds × expected players) now, with a progress bar."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress

from app.cli.common import failing_cleanly
from app.config import get_settings
from app.errors import ArenaError

if TYPE_CHECKING:
    from app.game.events import StockProgress


def prepare(code: Annotated[str, typer.Argument(help="The event's join code.")]) -> None:
    """Make every image the event prepares ahead (its rounds × expected players, set when it was created), on the
    configured model service (ARENA_MODEL_SERVICE_URL or in process), as the server does in the background. The
    event may already be running; images made by the server meanwhile count too."""
    # The database layer, the game and the model service load SQLAlchemy and torch; `arena --help` need not.
    from app.db.session import open_database
    from app.game.events import prepare_event
    from app.modelsvc.factory import default_model_service

    settings = get_settings()

    async def run() -> StockProgress:
        database = open_database(settings.database_url)
        service = default_model_service(settings)
        await service.start()
        try:
            with Progress() as progress:
                task = progress.add_task(f"preparing {code.upper()}", total=None)

                def advance(done: StockProgress) -> None:
                    progress.update(task, total=done.target, completed=done.made)

                return await prepare_event(database, service, code, on_progress=advance)
        finally:
            await service.stop()
            await database.dispose()

    with failing_cleanly(ArenaError, interrupted="the images made so far are kept"):
        done = asyncio.run(run())
    if done.target == 0:
        typer.echo(f"event {code.upper()} prepares no images (own pace, a round limit and expected players needed)")
    else:
        typer.echo(f"event {code.upper()}: {done.made} of {done.target} images prepared")

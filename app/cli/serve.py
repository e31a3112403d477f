"""`arena serve`: the web server, with the in-process model service unless ARENA_MODEL_SERVICE_URL points elsewhere."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import check_opponent_ready
from app.cli.logs import current_level_name
from app.config import get_settings


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default ARENA_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default ARENA_PORT, 8000).")] = None,
    migrate: Annotated[bool, typer.Option(help="Wait for the database and apply migrations first.")] = True,
) -> None:
    """Start the web server (and the in-process model service)."""
    # The server, the app and Alembic take seconds to import; `arena --help` need not.
    import uvicorn

    from app.db import migrate as migrations
    from app.main import create_app

    settings = get_settings()
    if migrate:
        migrations.wait_for_database(settings.database_url)
        migrations.upgrade(settings.database_url)
    if not settings.model_service_url:  # a separate model service checks its own checkpoints (arena modelsvc)
        check_opponent_ready()
    # No log_config: uvicorn's records go through arena's handler (times, levels, --log-format) at arena's level.
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        log_level=current_level_name(),
    )

"""`arena serve`: the web server, with the in-process model service unless ARENA_MODEL_SERVICE_URL points elsewhere."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import SecretStr

from app.cli.common import check_opponent_ready
from app.cli.logs import current_level_name
from app.config import DEFAULT_SECRET, get_settings


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default ARENA_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default ARENA_PORT, 8000).")] = None,
    migrate: Annotated[bool, typer.Option(help="Wait for the database and apply migrations first.")] = True,
    lan: Annotated[
        bool,
        typer.Option(
            "--lan",
            help="Let a room in: listen on every interface (0.0.0.0) and print the address and QR code phones open.",
        ),
    ] = False,
) -> None:
    """Start the web server (and the in-process model service). Off loopback it never signs cookies with the
    built-in secret key: unless ARENA_SECRET_KEY is set it makes a random one, kept in var/secret_key."""
    # The server, the app, Alembic and the QR code take seconds to import; `arena --help` need not.
    import segno
    import uvicorn

    from app.cli.graceful import GracefulServer
    from app.db import migrate as migrations
    from app.main import create_app
    from app.web import room

    settings = get_settings()
    bind_host = "0.0.0.0" if lan else host or settings.host
    bind_port = port or settings.port
    if not room.is_loopback_host(bind_host) and settings.secret_key.get_secret_value() == DEFAULT_SECRET:
        settings = settings.model_copy(update={"secret_key": SecretStr(room.kept_secret_key())})
        typer.echo(
            f"Signing cookies with the random key kept in {room.SECRET_KEY_FILE} (set ARENA_SECRET_KEY to choose)."
        )
    if migrate:
        migrations.wait_for_database(settings.database_url)
        migrations.upgrade(settings.database_url)
    if not settings.model_service_url:  # a separate model service checks its own checkpoints (arena modelsvc)
        check_opponent_ready()
    if lan or settings.public_url:
        join = room.public_base(settings.public_url, bind_host, bind_port) + "/join"
        typer.echo(f"\nPhones open {join} (or scan this); the host console is at {join.removesuffix('/join')}/host\n")
        segno.make(join, error="m").terminal(compact=True)
        if room.is_loopback_url(join):
            typer.echo("No network address found: phones cannot reach this machine. Join a Wi-Fi network first.")
    app = create_app(settings)
    # No log_config: uvicorn's records go through arena's handler (times, levels, --log-format) at arena's level.
    config = uvicorn.Config(
        app,
        host=bind_host,
        port=bind_port,
        log_config=None,
        log_level=current_level_name(),
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )
    GracefulServer(config, on_exit=app.state.hub.close_from_signal).run()

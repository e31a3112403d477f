"""The `arena` command. Thin wrappers: each command parses options and calls into app/. One module per command
group; this one assembles them, in the order `arena --help` lists them."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.db import db_app
from app.cli.export import export
from app.cli.logs import LogFormat, LogLevel, configure_logging
from app.cli.measure import bench_app, defense_eval, eval_model, transfer_matrix
from app.cli.modelsvc import modelsvc
from app.cli.prepare import prepare
from app.cli.serve import serve
from app.cli.train import eligible, train, train_advgan
from app.cli.version import version_line
from app.config import LogSettings

app = typer.Typer(help="Adversarial Arena: people against an image classifier under attack.", no_args_is_help=True)


def print_version(asked: bool) -> None:
    if asked:
        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def global_options(
    log_level: Annotated[
        LogLevel | None,
        typer.Option(case_sensitive=False, help="Least level logged (default: ARENA_LOG_LEVEL, or info)."),
    ] = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(case_sensitive=False, help="json: one JSON object a line (default: ARENA_LOG_FORMAT, or text)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Options for every command; they go before it: `arena --log-level debug serve`."""
    configured = LogSettings()  # the environment and .env, like every other setting
    configure_logging(log_level or configured.log_level, log_format or configured.log_format)


app.add_typer(db_app, name="db")
app.command()(serve)
app.command()(modelsvc)
app.command()(train)
app.command()(eligible)
app.command("transfer-matrix")(transfer_matrix)
app.command()(export)
app.command()(prepare)
app.add_typer(bench_app, name="bench")
app.command("train-advgan")(train_advgan)
app.command("eval")(eval_model)
app.command("defense-eval")(defense_eval)


def main() -> None:
    app()

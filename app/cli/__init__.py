"""The `arena` command. Thin wrappers: each command parses options and calls into app/. One module per command
group; this one assembles them, in the order `arena --help` lists them."""

from __future__ import annotations

import typer

from app.cli.db import db_app
from app.cli.export import export
from app.cli.measure import bench_app, defense_eval, eval_model, transfer_matrix
from app.cli.modelsvc import modelsvc
from app.cli.serve import serve
from app.cli.train import eligible, train, train_advgan

app = typer.Typer(help="Adversarial Arena: people against an image classifier under attack.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.command()(serve)
app.command()(modelsvc)
app.command()(train)
app.command()(eligible)
app.command("transfer-matrix")(transfer_matrix)
app.command()(export)
app.add_typer(bench_app, name="bench")
app.command("train-advgan")(train_advgan)
app.command("eval")(eval_model)
app.command("defense-eval")(defense_eval)


def main() -> None:
    app()

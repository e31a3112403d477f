"""The `arena` command. Thin wrappers: each command parses options and calls into app/."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from app.config import get_settings

app = typer.Typer(help="Adversarial Arena: people against an image classifier under attack.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema and maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")

logger = logging.getLogger("arena")


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default ARENA_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default ARENA_PORT, 8000).")] = None,
    migrate: Annotated[bool, typer.Option(help="Wait for the database and apply migrations first.")] = True,
) -> None:
    """Start the web server (and the in-process model service)."""
    import uvicorn

    from app.db import migrate as migrations
    from app.main import create_app

    _setup_logging()
    settings = get_settings()
    if migrate:
        migrations.wait_for_database(settings.database_url)
        migrations.upgrade(settings.database_url)
    if not settings.model_service_url:  # a separate model service checks its own checkpoints (arena modelsvc)
        _check_opponent_ready()
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port, log_level="info")


def _check_opponent_ready() -> None:
    """Fail before the server starts, with the fix, rather than with a traceback inside the lifespan."""
    from app.ml.opponents.registry import OpponentMissing
    from app.ml.opponents.specs import opponent_pack
    from app.ml.packs import DataPackMissing, get_pack

    settings = get_settings()
    try:
        get_pack(opponent_pack(settings.opponent), settings.data_dir).load_split("test")
    except DataPackMissing as error:
        _fail(str(error))
    except OpponentMissing as error:
        _fail(str(error))
    checkpoint = Path(settings.models_dir) / f"{settings.opponent}.safetensors"
    if not checkpoint.is_file():
        _fail(f"no checkpoint {checkpoint}; train it with `arena train --pack fashion`")


@app.command()
def modelsvc(
    host: Annotated[str, typer.Option(help="Bind address; keep it on loopback or a private network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; the web server reaches it through ARENA_MODEL_SERVICE_URL.")] = 8100,
    backend: Annotated[
        str, typer.Option(help="What serves the jobs: inprocess (torch here) or ray (a Ray Serve deployment).")
    ] = "inprocess",
    replicas: Annotated[int, typer.Option(help="ray: replicas (the minimum, with --max-replicas).")] = 1,
    max_replicas: Annotated[int, typer.Option(help="ray: autoscale up to this many replicas; 0: fixed.")] = 0,
    gpus_per_replica: Annotated[
        float | None, typer.Option(help="ray: GPUs per replica (default 1 where the cluster has GPUs, else 0).")
    ] = None,
    cpus_per_replica: Annotated[float, typer.Option(help="ray: CPUs per replica (and its torch threads).")] = 1.0,
) -> None:
    """Run the model service on its own (protocol: app/modelsvc/server.py); start the web server with
    ARENA_MODEL_SERVICE_URL=http://HOST:PORT to use it. With --backend ray: on the Ray cluster at RAY_ADDRESS, or on
    a private local Ray instance (docs/scaling.md)."""
    from app.modelsvc import server

    _setup_logging()
    if backend == "ray":
        _modelsvc_on_ray(host, port, replicas, max_replicas, gpus_per_replica, cpus_per_replica)
        return
    if backend not in server.BACKENDS:
        _fail(f"unknown backend {backend!r}; choose one of: {', '.join(server.BACKENDS)}")
    _check_opponent_ready()
    server.serve(host, port, backend)


def _modelsvc_on_ray(host: str, port: int, replicas: int, max_replicas: int, gpus: float | None, cpus: float) -> None:
    try:
        from app.modelsvc import ray_backend
    except ImportError as error:
        _fail(f"--backend ray needs Ray Serve ({error}); install it with: pip install -e '.[ray]'")
    try:
        options = ray_backend.RayOptions(
            replicas=replicas, max_replicas=max_replicas, gpus_per_replica=gpus, cpus_per_replica=cpus
        )
    except ValueError as error:
        _fail(str(error))
    _check_opponent_ready()
    ray_backend.serve_forever(host, port, options)


@app.command()
def train(
    pack: Annotated[str, typer.Option(help="Data pack whose default opponent to train.")] = "fashion",
    opponent: Annotated[
        str | None, typer.Option(help="Train this opponent by name instead (e.g. fashion-resnet, fashion-forest).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for weights, shuffling and the card's attack evaluation.")] = 0,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: the recipe's).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default: the recipe's).")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default: the recipe's).")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 2,
) -> None:
    """Train the pack's opponent, save models/<name>.safetensors and rewrite its model card (with progress)."""
    from app.ml.packs import DataPackMissing
    from app.ml.training.command import summary, train_named, train_pack

    _setup_logging()
    settings = get_settings()
    try:
        card = (train_pack if opponent is None else train_named)(
            pack if opponent is None else opponent,
            seed=seed,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            device=device,
            models_dir=settings.models_dir,
            data_dir=settings.data_dir,
            threads=threads,
        )
    except DataPackMissing as error:
        _fail(str(error))
    except KeyError as error:
        _fail(str(error.args[0]) if error.args else str(error))
    except (ValueError, RuntimeError) as error:
        _fail(str(error))
    except KeyboardInterrupt:
        _fail("interrupted: the previous checkpoint and card were left as they were")
    typer.echo(summary(card))
    _refresh_eligibility(str(card["name"]), device)


def _refresh_eligibility(name: str, device: str = "cpu") -> None:
    """After training: the committed eligible-image record is keyed by the card (which pins the new checkpoint),
    so it is rewritten too, else every start would ask the model about all test images again."""
    from app.ml.opponents.eligibility import refresh_record

    settings = get_settings()
    typer.echo(f"{name}: asking it about every test image for models/{name}.eligible.json ...")
    path, correct, total = refresh_record(
        name, models_dir=settings.models_dir, data_dir=settings.data_dir, device=device
    )
    typer.echo(f"{name}: {correct} of {total} test images right when clean; wrote {path}")


@app.command()
def eligible(
    opponent: Annotated[
        list[str] | None, typer.Option(help="Opponent (repeatable); default: every opponent with a card here.")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 2,
) -> None:
    """Write models/<name>.eligible.json: the test images each opponent gets right when clean, the images its
    rounds are drawn from. The model service reads it instead of asking the model about all of them at start."""
    from rich.progress import Progress

    from app.ml.opponents import cards
    from app.ml.opponents.eligibility import refresh_record
    from app.ml.opponents.registry import OpponentCorrupt, OpponentMissing
    from app.ml.opponents.specs import available_opponents
    from app.ml.packs import DataPackMissing

    _setup_logging()
    settings = get_settings()
    names = opponent or [n for n in available_opponents() if cards.card_path(settings.models_dir, n).is_file()]
    if not names:
        _fail(f"no model cards in {settings.models_dir}: train an opponent first (make train)")
    with Progress() as progress:
        for name in names:
            task = progress.add_task(name, total=None)
            try:
                path, correct, total = refresh_record(
                    name,
                    models_dir=settings.models_dir,
                    data_dir=settings.data_dir,
                    device=device,
                    threads=threads,
                    progress=lambda done, task=task: progress.advance(task, done),
                )
            except (KeyError, ValueError, OpponentMissing, OpponentCorrupt, DataPackMissing) as error:
                _fail(str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error))
            progress.update(task, total=total, completed=total)
            progress.console.print(f"{name}: {correct} of {total} right when clean ({correct / total:.1%}); {path}")


@app.command("transfer-matrix")
def transfer_matrix(
    eps: Annotated[float, typer.Option(help="L-inf budget in pixel units (0.1 = 25.5/255).")] = 0.1,
    n: Annotated[int, typer.Option(help="Least number of images per cell (both models right when clean).")] = 500,
    attack: Annotated[str, typer.Option(help="White-box L-inf attack run on each surrogate.")] = "pgd",
    steps: Annotated[int, typer.Option(help="Steps of the attack (ignored by fgsm).")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the per-image random starts.")] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 2,
) -> None:
    """Craft on every differentiable opponent, show to every opponent; write models/transfer-matrix.json (+ .md)."""
    from app.ml.measure.transfer_matrix import DEFINITION, compute_transfer_matrix, write_transfer_matrix
    from app.ml.opponents.registry import OpponentCorrupt, OpponentMissing

    _setup_logging()
    settings = get_settings()
    try:
        result = compute_transfer_matrix(
            eps=eps,
            n=n,
            attack=attack,
            steps=steps,
            seed=seed,
            models_dir=settings.models_dir,
            device=device,
            threads=threads,
        )
    except (OpponentMissing, OpponentCorrupt, ValueError) as error:
        _fail(str(error))
    except KeyError as error:  # an unknown attack or opponent name: the message lists the valid ones
        _fail(str(error.args[0]) if error.args else str(error))
    except KeyboardInterrupt:
        _fail("interrupted: the previous transfer matrix (if any) was left as it was")
    json_path, md_path = write_transfer_matrix(result, settings.models_dir)
    typer.echo(f"Definition: {DEFINITION}.")
    width = max(len(t) for t in result["targets"])
    typer.echo("surrogate \\ target".ljust(width) + "".join(t.rjust(width + 2) for t in result["targets"]))
    for s in result["surrogates"]:
        cells = [c for c in result["cells"] if c["surrogate"] == s]
        typer.echo(s.ljust(width) + "".join(f"{100 * c['rate']:.1f}% n={c['n']}".rjust(width + 2) for c in cells))
    typer.echo(f"wrote {json_path} and {md_path}")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply the Alembic migrations to ARENA_DATABASE_URL."""
    from app.db import migrate as migrations

    _setup_logging()
    migrations.upgrade(get_settings().database_url, revision)
    typer.echo(f"database at revision {revision}")


@db_app.command("wait")
def db_wait(timeout: Annotated[float, typer.Option(help="Seconds to keep trying.")] = 60.0) -> None:
    """Wait until the database answers (for container start-up)."""
    from app.db import migrate as migrations

    try:
        migrations.wait_for_database(get_settings().database_url, timeout_s=timeout)
    except Exception as error:
        _fail(f"database not reachable after {timeout:.0f} s: {error}")
    typer.echo("database is up")


@app.command()
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write; '-' for standard output.")] = Path("-"),
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, json, jsonl or zip (research bundle).")] = "csv",
    event: Annotated[str | None, typer.Option("--event", help="Only this event (its join code).")] = None,
) -> None:
    """Export every answer (human and machine) with its round, one row per answer. --format zip writes the research
    bundle: images, answers.csv, rounds.csv, metadata.json, DATASHEET.md and a recompute.py
    (app/stats/bundle/build.py)."""
    from app.db.session import open_database
    from app.ml.packs import get_pack
    from app.stats import export as exporting

    if fmt == "zip":
        _export_zip(output, event)
        return
    if fmt not in ("csv", "json", "jsonl"):
        _fail(f"unknown format {fmt!r}: use csv, json, jsonl or zip")

    async def run() -> None:
        database = open_database(get_settings().database_url)
        stream = sys.stdout if str(output) == "-" else output.open("w", encoding="utf-8", newline="")
        try:
            async with database.sessionmaker() as session:
                event_id = None if event is None else await _event_id(session, event)
                names = lambda pack: get_pack(pack).class_names  # noqa: E731
                async for chunk in exporting.stream_answers(session, fmt, names, event_id=event_id):
                    stream.write(chunk)
        finally:
            if stream is not sys.stdout:
                stream.close()
            await database.dispose()

    asyncio.run(run())
    if str(output) != "-":
        typer.echo(f"wrote the answers export ({fmt}) to {output}", err=True)


async def _event_id(session: object, code: str) -> str:
    from app.errors import NotFound
    from app.game.events import event_by_code

    try:
        return (await event_by_code(session, code)).id  # type: ignore[arg-type]
    except NotFound as error:
        _fail(f"{error.message} (--event {code!r})")
        raise


def _export_zip(output: Path, event: str | None) -> None:
    """The research bundle, with a progress bar; written to a temporary file and moved into place when complete."""
    from datetime import UTC, datetime

    from rich.progress import Progress

    from app.db.session import open_database
    from app.ml.packs import get_pack
    from app.stats import science
    from app.stats.bundle import build as bundle

    if str(output) == "-":
        output = Path(f"arena-dataset-{datetime.now(UTC):%Y%m%d-%H%M%S}.zip")

    async def run() -> bundle.BundleSummary:
        database = open_database(get_settings().database_url)
        try:
            async with database.sessionmaker() as session:
                event_id = None if event is None else await _event_id(session, event)
                with Progress(transient=True) as progress:
                    task = progress.add_task("exporting rounds", total=None)
                    return await bundle.write_bundle(
                        session,
                        output,
                        filters=science.StatsFilter(event_id=event_id),
                        filter_labels={"event": event.upper() if event else None},
                        class_names_of=lambda pack: get_pack(pack).class_names,
                        on_start=lambda total: progress.update(task, total=total),
                        on_advance=lambda n: progress.advance(task, n),
                    )
        finally:
            await database.dispose()

    try:
        done = asyncio.run(run())
    except KeyboardInterrupt:
        _fail("interrupted: no bundle was written")
    typer.echo(
        f"wrote {done.path}: {done.answers} answers, {done.rounds} rounds, {done.images} images, "
        f"{done.players} people ({done.bytes / 1e6:.1f} MB)",
        err=True,
    )


bench_app = typer.Typer(help="Benchmarks: ratios measured side by side in one run.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("attacks")
def bench_attacks(
    attacks: Annotated[str, typer.Option(help="Comma-separated suite entries (default: all).")] = "",
    n: Annotated[int, typer.Option(help="Largest batch per attack (the suite uses 128 or 32).")] = 128,
    reps: Annotated[int, typer.Option(help="Interleaved repetitions of the ratio runs.")] = 5,
    ratios: Annotated[bool, typer.Option(help="Also run the compute-limit ratio runs (128 images).")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the per-image random starts.")] = 0,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (default: torch's).")] = None,
    write_results: Annotated[bool, typer.Option(help="Append a dated section to the results file.")] = False,
    results_file: Annotated[Path, typer.Option(help="Where --write-results appends.")] = Path("benchmarks/RESULTS.md"),
) -> None:
    """Every attack: success, median L2/L-inf, queries, ms/image; PGD/AdvGAN/CW ratios to their compute floor."""
    from app.ml.measure.commands import bench_attacks as run
    from app.ml.opponents.registry import OpponentMissing
    from app.ml.packs import DataPackMissing

    _setup_logging()
    try:
        table = run(
            attacks=attacks,
            n=n,
            reps=reps,
            ratios=ratios,
            seed=seed,
            threads=threads,
            write_results=write_results,
            results_file=results_file,
            command=" ".join(
                part
                for part in (
                    "arena bench attacks",
                    f"--attacks {attacks}" if attacks else "",
                    f"--n {n} --reps {reps} --seed {seed}",
                    "" if ratios else "--no-ratios",
                    f"--threads {threads}" if threads else "",
                )
                if part
            ),
        )
    except (ValueError, KeyError, FileNotFoundError, OpponentMissing, DataPackMissing) as error:
        _fail(str(error))
    except KeyboardInterrupt:
        _fail("interrupted: nothing was written")
    typer.echo(table)


@app.command("train-advgan")
def train_advgan(
    opponent: Annotated[str, typer.Option(help="The opponent the generator learns to fool.")] = "fashion-cnn",
    seed: Annotated[int, typer.Option(help="Seed for weights, shuffling and the eps draws.")] = 0,
    epochs: Annotated[int, typer.Option(help="Passes over the training images.")] = 1,
    max_batches: Annotated[int | None, typer.Option(help="Cap on batches per epoch (quick trials).")] = None,
    width: Annotated[int, typer.Option(help="Generator width (channels of its first layer).")] = 16,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 1,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Train an AdvGAN generator against an opponent; write models/advgan-<opponent>.safetensors and its card."""
    from app.ml.measure.commands import train_advgan as run
    from app.ml.opponents.registry import OpponentMissing
    from app.ml.packs import DataPackMissing

    _setup_logging()
    try:
        line = run(
            opponent=opponent,
            seed=seed,
            epochs=epochs,
            max_batches=max_batches,
            width=width,
            threads=threads,
            device=device,
        )
    except (ValueError, KeyError, FileNotFoundError, OpponentMissing, DataPackMissing) as error:
        _fail(str(error))
    except KeyboardInterrupt:
        _fail("interrupted: the previous generator and card were left as they were")
    typer.echo(line)


@app.command("eval")
def eval_model(
    model: Annotated[str, typer.Option(help="Opponent to measure (models/NAME.json gets the table).")] = "fashion-cnn",
    n: Annotated[int, typer.Option(help="First n test images.")] = 1000,
    eps: Annotated[str, typer.Option(help="Comma-separated budgets (pixel units).")] = "0.05,0.1,0.2",
    attacks: Annotated[
        str, typer.Option(help="Comma-separated attacks, parameters after colons: pgd:steps=20:early_stop=true.")
    ] = "fgsm,pgd:steps=20,advgan,square:max_queries=1000",
    seed: Annotated[int, typer.Option(help="Seed of the per-image random draws.")] = 0,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (default: torch's).")] = None,
) -> None:
    """Clean accuracy and each attack at each eps; writes robustness_table into the model's card (.json, .md)."""
    from app.ml.measure.commands import eval_model as run
    from app.ml.measure.commands import parse_eps
    from app.ml.opponents.registry import OpponentMissing
    from app.ml.packs import DataPackMissing

    _setup_logging()
    try:
        table = run(model, n=n, eps=parse_eps(eps), attacks=attacks, seed=seed, threads=threads)
    except (ValueError, TypeError, KeyError, FileNotFoundError, OpponentMissing, DataPackMissing) as error:
        _fail(str(error))
    except KeyboardInterrupt:
        _fail("interrupted: the card was left as it was")
    typer.echo(table)


@app.command("defense-eval")
def defense_eval(
    opponent: Annotated[str, typer.Option(help="Defended opponent (fashion-robust, fashion-distilled, ...).")],
    row: Annotated[list[str] | None, typer.Option(help="Only this row id (repeatable); default: every row.")] = None,
    n: Annotated[int, typer.Option(help="First n test images (at least 1000).")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the per-image random draws.")] = 0,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (default: torch's).")] = None,
) -> None:
    """The defense lab's rows (naive vs adaptive attacks, detection) for one opponent, written into its card."""
    from app.ml.measure.defense_eval import evaluate_defense
    from app.ml.opponents.registry import OpponentMissing
    from app.ml.packs import DataPackMissing

    _setup_logging()
    try:
        card = evaluate_defense(opponent, rows=row, n=n, seed=seed, threads=threads)
    except (ValueError, TypeError, KeyError, OpponentMissing, DataPackMissing) as error:
        _fail(str(error))
    except KeyboardInterrupt:
        _fail("interrupted: the rows measured so far are in the card")
    for row_id, measured in card["defense_lab"]["rows"].items():
        typer.echo(f"{opponent} {row_id}: accuracy {measured['accuracy']:.1%} (n = {measured['n']})")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

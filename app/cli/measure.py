"""Measurement commands: `arena eval`, `arena defense-eval`, `arena transfer-matrix` and `arena bench attacks`.
Each writes what it measured into the model cards or the results file and prints a table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import (
    Device,
    RandomDrawsSeed,
    RandomStartsSeed,
    Threads,
    ThreadsOrTorchDefault,
    failing_cleanly,
    machine_threads,
)
from app.config import get_settings

bench_app = typer.Typer(help="Benchmarks: ratios measured side by side in one run.", no_args_is_help=True)


def transfer_matrix(
    eps: Annotated[float, typer.Option(help="L-inf budget in pixel units (0.1 = 25.5/255).")] = 0.1,
    n: Annotated[int, typer.Option(help="Least number of images per cell (both models right when clean).")] = 500,
    attack: Annotated[str, typer.Option(help="White-box L-inf attack run on each surrogate.")] = "pgd",
    steps: Annotated[int, typer.Option(help="Steps of the attack (ignored by fgsm).")] = 20,
    seed: RandomStartsSeed = 0,
    device: Device = "cpu",
    threads: Threads = 0,
) -> None:
    """Craft on every differentiable opponent, show to every opponent; write models/transfer-matrix.json (+ .md)."""
    # torch and the attacks take seconds to import; `arena --help` need not.
    from app.ml.measure.transfer_matrix import DEFINITION, compute_transfer_matrix, write_transfer_matrix
    from app.ml.opponents.registry import OpponentCorrupt, OpponentMissing

    settings = get_settings()
    with failing_cleanly(
        OpponentMissing,
        OpponentCorrupt,
        ValueError,
        KeyError,
        interrupted="the previous transfer matrix (if any) was left as it was",
        unquoted_key_errors=True,
    ):
        result = compute_transfer_matrix(
            eps=eps,
            n=n,
            attack=attack,
            steps=steps,
            seed=seed,
            models_dir=settings.models_dir,
            device=device,
            threads=machine_threads(threads),
        )
    json_path, md_path = write_transfer_matrix(result, settings.models_dir)
    typer.echo(f"Definition: {DEFINITION}.")
    width = max(len(t) for t in result["targets"])
    typer.echo("surrogate \\ target".ljust(width) + "".join(t.rjust(width + 2) for t in result["targets"]))
    for s in result["surrogates"]:
        cells = [c for c in result["cells"] if c["surrogate"] == s]
        typer.echo(s.ljust(width) + "".join(f"{100 * c['rate']:.1f}% n={c['n']}".rjust(width + 2) for c in cells))
    typer.echo(f"wrote {json_path} and {md_path}")


@bench_app.command("attacks")
def bench_attacks(
    attacks: Annotated[str, typer.Option(help="Comma-separated suite entries (default: all).")] = "",
    n: Annotated[int, typer.Option(help="Largest batch per attack (the suite uses 128 or 32).")] = 128,
    reps: Annotated[int, typer.Option(help="Interleaved repetitions of the ratio runs.")] = 5,
    ratios: Annotated[bool, typer.Option(help="Also run the compute-limit ratio runs (128 images).")] = True,
    seed: RandomStartsSeed = 0,
    threads: ThreadsOrTorchDefault = None,
    write_results: Annotated[bool, typer.Option(help="Append a dated section to the results file.")] = False,
    results_file: Annotated[Path, typer.Option(help="Where --write-results appends.")] = Path("benchmarks/RESULTS.md"),
) -> None:
    """Every attack: success, median L2/L-inf, queries, ms/image; PGD/AdvGAN/CW ratios to their compute floor."""
    # torch and the attacks take seconds to import; `arena --help` need not.
    from app.ml.measure.commands import bench_attacks as run
    from app.ml.opponents.registry import OpponentMissing
    from app.ml.packs import DataPackMissing

    with failing_cleanly(
        ValueError, KeyError, FileNotFoundError, OpponentMissing, DataPackMissing, interrupted="nothing was written"
    ):
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
    typer.echo(table)


def eval_model(
    model: Annotated[str, typer.Option(help="Opponent to measure (models/NAME.json gets the table).")] = "fashion-cnn",
    n: Annotated[int, typer.Option(help="First n test images.")] = 1000,
    eps: Annotated[str, typer.Option(help="Comma-separated budgets (pixel units).")] = "0.05,0.1,0.2",
    attacks: Annotated[
        str, typer.Option(help="Comma-separated attacks, parameters after colons: pgd:steps=20:early_stop=true.")
    ] = "fgsm,pgd:steps=20,advgan,square:max_queries=1000",
    seed: RandomDrawsSeed = 0,
    threads: ThreadsOrTorchDefault = None,
) -> None:
    """Clean accuracy and each attack at each eps; writes robustness_table into the model's card (.json, .md)."""
    # torch and the attacks take seconds to import; `arena --help` need not.
    from app.ml.measure.commands import eval_model as run
    from app.ml.measure.commands import parse_eps
    from app.ml.opponents.registry import OpponentMissing
    from app.ml.packs import DataPackMissing

    with failing_cleanly(
        ValueError,
        TypeError,
        KeyError,
        FileNotFoundError,
        OpponentMissing,
        DataPackMissing,
        interrupted="the card was left as it was",
    ):
        table = run(model, n=n, eps=parse_eps(eps), attacks=attacks, seed=seed, threads=threads)
    typer.echo(table)


def defense_eval(
    opponent: Annotated[str, typer.Option(help="Defended opponent (fashion-robust, fashion-distilled, ...).")],
    row: Annotated[list[str] | None, typer.Option(help="Only this row id (repeatable); default: every row.")] = None,
    n: Annotated[int, typer.Option(help="First n test images (at least 1000).")] = 1000,
    seed: RandomDrawsSeed = 0,
    threads: ThreadsOrTorchDefault = None,
    chunk: Annotated[
        int | None,
        typer.Option(
            help="Run the AutoAttack row alone in chunks of this many images, resumably: each finished chunk is kept "
            "in models/<opponent>.autoattack.json and the card's row covers the chunks done."
        ),
    ] = None,
) -> None:
    """The defense lab's rows (naive vs adaptive attacks, detection) for one opponent, written into its card."""
    # torch and the defenses take seconds to import; `arena --help` need not.
    from app.ml.measure.defense_eval import evaluate_defense
    from app.ml.opponents.registry import OpponentMissing
    from app.ml.packs import DataPackMissing

    with failing_cleanly(
        ValueError,
        TypeError,
        KeyError,
        OpponentMissing,
        DataPackMissing,
        interrupted="the rows measured so far are in the card (and a chunked row's finished chunks in its file)",
    ):
        card = evaluate_defense(opponent, rows=row, n=n, seed=seed, threads=threads, chunk=chunk)
    for row_id, measured in card["defense_lab"]["rows"].items():
        typer.echo(f"{opponent} {row_id}: accuracy {measured['accuracy']:.1%} (n = {measured['n']})")

"""What ``arena bench attacks``, ``arena train-advgan`` and ``arena eval`` call, so that app/cli.py stays thin.

Each function shows a rich progress bar (on standard error) and returns what the command prints.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.config import PROJECT_ROOT, get_settings
from app.ml.measure import bench
from app.ml.measure.machine import load_average, machine_line
from app.ml.measure.robustness import evaluate_and_record, format_table
from app.ml.opponents.registry import load_opponent
from app.ml.packs import get_pack
from app.ml.training.advgan import train_advgan as train_generator
from app.ml.training.options import TrainingOptions

RESULTS_FILE = PROJECT_ROOT / "benchmarks" / "RESULTS.md"


def bench_attacks(
    *,
    attacks: str = "",
    n: int = 128,
    reps: int = 5,
    ratios: bool = True,
    seed: int = 0,
    threads: int | None = None,
    write_results: bool = False,
    results_file: Path = RESULTS_FILE,
    command: str = "arena bench attacks",
    progress: bool = True,
) -> str:
    """Run the attack benchmark against the configured opponent and return its Markdown table.

    ``ratios`` adds the compute-limit runs (PGD-10 fixed, early stop, torchattacks, AdvGAN, CW), which need 128
    images. With ``write_results`` a dated section (machine, command, load) is appended to ``results_file``.
    """
    suite = bench.select_suite(attacks, n)
    if reps < 1:
        raise ValueError(f"reps must be at least 1, got {reps}")
    if threads is not None:
        torch.set_num_threads(threads)
    model = load_opponent(get_settings().opponent)
    images, labels = get_pack(model.pack_name).tensors("test", n=max(n, 128) if ratios else n)
    load_before = load_average()
    # One unit per suite entry plus one per repetition of each ratio batch group (two groups: 128 and 32).
    total = len(suite) + (2 * reps if ratios else 0)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr),
        disable=not progress,
        transient=True,
    ) as bar:
        task = bar.add_task("attack benchmark", total=total)

        def step(message: str) -> None:
            bar.update(task, description=message)
            if "(torchattacks)" not in message and "skipped" not in message:
                bar.advance(task)

        rows, ratio_rows = bench.run_attack_bench(
            model, images, labels, suite=suite, reps=reps, seed=seed, ratios=ratios, progress=step
        )
    table = bench.format_attack_bench(rows, ratio_rows)
    if write_results:
        section = bench.results_section(
            table,
            command=command,
            machine=machine_line(),
            load_before=load_before,
            load_after=load_average(),
        )
        bench.append_results(section, results_file)
    return table


def train_advgan(
    *, opponent: str, seed: int, epochs: int, max_batches: int | None, width: int, threads: int, device: str
) -> str:
    """Train the generator (see :func:`app.ml.training.advgan.train_advgan`) and return a one-line summary."""
    options = TrainingOptions(seed=seed, epochs=epochs, device=device, threads=threads)
    card = train_generator(opponent, options, max_batches=max_batches, width=width)
    rows = {r["eps"]: r for r in card["evaluation"]["rows"]}
    parts = ", ".join(
        f"eps {eps:g}: {r['advgan_success']:.1%} (PGD-10 {r['pgd10_success']:.1%})" for eps, r in rows.items()
    )
    speed = card["speed"]
    return (
        f"{card['name']}: success {parts}; {speed['advgan_ms_per_image']:.2f} ms/image vs PGD-10 "
        f"{speed['pgd10_ms_per_image']:.2f} ({speed['pgd10_over_advgan']:.1f}x); trained in "
        f"{card['training']['wall_time_s']:.0f} s; wrote {card['checkpoint']['file']} and its card"
    )


def parse_eps(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--eps must be comma-separated numbers like 0.05,0.1,0.2, got {text!r}") from None
    if not values:
        raise ValueError("--eps needs at least one value")
    return values


def eval_model(
    name: str, *, n: int, eps: Sequence[float], attacks: str, seed: int = 0, threads: int | None = None
) -> str:
    """Measure and record the robustness table of opponent ``name``; returns the table as Markdown."""
    if threads is not None:
        torch.set_num_threads(threads)
    table = evaluate_and_record(name, n=n, eps_list=eps, attacks=attacks, seed=seed, progress=True)
    return format_table(table)

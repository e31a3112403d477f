"""The default cloak on every offline gallery photo: does it leave the whole family, beat both search engines, and
survive what it never saw? And how long does it take on a 224 px photo with one thread?

For each gallery photo (app/ml/cloak/search.py; >= 20 with the dev extra's Foolbox photos), the photo is scaled to
``--side`` px on its long side and cloaked with the default settings (family goal, search attack on) at each
``--budget`` (grey levels, 4 unless told; one run per budget, printed side by side) with ``--steps`` PGD steps.
The search counts the cloaked copy as found when the uploaded original ranks in the top 5 of the gallery or lies
within the engine's threshold; the photo's own gallery entries are left out (leave-one-out), as for an upload
the gallery has never seen. The control row: the untouched photo under each check (is it still found? does the
classifier still say the family?).

Speed: ``--speed-reps`` cloaks per budget of scikit-image's chelsea at 224x224, median and minimum of the attack
(gradient steps + the verdict on the delivered image) and of the whole cloak with the held-out checks.

Run: ``.venv/bin/python benchmarks/cloak_search.py [--steps 10] [--budget 4 8 16] [--threads 1] [--limit N]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.progress import track
from rich.table import Table

from app.ml.cloak.engine import CloakEngine, CloakOutcome
from app.ml.cloak.heldout import CHECKS, ENGINES, survival_table
from app.ml.cloak.search import SearchIndex, gallery_photos, load_photo


def pct(hits: int, n: int) -> str:
    return f"{hits}/{n} ({100 * hits / max(n, 1):.0f}%)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--budget", type=int, nargs="+", default=[4], help="grey levels of 255, one run each")
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos (0: all)")
    parser.add_argument("--speed-reps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console(width=200)  # the tables go into RESULTS.md from a log file
    engine = CloakEngine()
    index = engine.search_index()
    photos = gallery_photos()
    photos = photos[: args.limit] if args.limit else photos
    n = len(photos)
    console.print(
        f"gallery {len(index.names)} photos x {len(index.entries) // len(index.names)} entries; thresholds "
        + ", ".join(f"{k} {float(v):.4g}" for k, v in index.thresholds.items())
    )

    runs: dict[int, list] = {}  # type: ignore[type-arg]
    loads: dict[int, tuple[float, float]] = {}
    controls = []
    for levels in args.budget:
        load_before = os.getloadavg()[0]
        outcomes = []
        for photo in track(photos, description=f"cloaking at {levels} levels", console=console):
            pixels = load_photo(photo, args.side)
            outcomes.append(engine.cloak(pixels, eps=levels / 255, steps=args.steps, leave_out=photo.name))
            if len(controls) < n:  # the untouched photo does not depend on the budget
                controls.append(control(engine, index, photo.name, pixels, outcomes[-1]))
        runs[levels] = outcomes
        loads[levels] = (load_before, os.getloadavg()[0])

    summary = Table(title=f"Default cloak on {n} photos ({args.side} px long side, {args.steps} steps), per budget")
    summary.add_column("measure")
    for levels in args.budget:
        summary.add_column(f"{levels}/255")
    for label, cell in summary_rows():
        summary.add_row(label, *[cell(runs[levels], n) for levels in args.budget])
    summary.add_row("load average before, after", *[f"{a:.1f}, {b:.1f}" for a, b in (loads[x] for x in args.budget)])
    console.print(summary)

    for levels in args.budget:
        outcomes = runs[levels]
        table = Table(title=f"Survival per check at {levels}/255: cloaked (control: the untouched photo)")
        for column in ("check", "goal Lite0", "goal Lite2", *[f"beats {e}" for e in ENGINES]):
            table.add_column(column)
        for r, (check, _) in enumerate(CHECKS):
            rows = [o.survival[r] for o in outcomes]
            ctrl = [c[r] for c in controls]
            cells = [
                f"{pct(sum(x.goal_met for x in rows), n)} ({sum(x.goal_met for x in ctrl)})",
                f"{pct(sum(bool(x.heldout_goal_met) for x in rows), n)} "
                f"({sum(bool(x.heldout_goal_met) for x in ctrl)})",
            ]
            for k, _engine in enumerate(ENGINES):
                beaten = sum(x.matches[k].beaten for x in rows)
                cells.append(f"{pct(beaten, n)} ({sum(x.matches[k].beaten for x in ctrl)})")
            table.add_row(check, *cells)
        console.print(table)

    if args.speed_reps <= 0:
        return
    sample = np.array(Image.open(photos_path("chelsea")).convert("RGB").resize((224, 224), Image.Resampling.LANCZOS))
    for levels in args.budget:
        load_before = os.getloadavg()[0]
        attack_times, full_times = [], []
        for _ in range(args.speed_reps):
            started = time.perf_counter()
            outcome = engine.cloak(sample, eps=levels / 255, steps=args.steps)
            full_times.append(time.perf_counter() - started)
            attack_times.append(outcome.attack_seconds)
        console.print(
            f"speed at {levels}/255, chelsea 224x224, {args.threads} thread(s), {args.speed_reps} reps: attack "
            f"median {statistics.median(attack_times):.2f} s (min {min(attack_times):.2f}); with the checks median "
            f"{statistics.median(full_times):.2f} s (min {min(full_times):.2f}); load average {load_before:.2f} "
            f"before, {os.getloadavg()[0]:.2f} after"
        )


def control(engine: CloakEngine, index: SearchIndex, name: str, pixels: np.ndarray, outcome: CloakOutcome) -> tuple:  # type: ignore[type-arg]
    """The survival table of the untouched photo, judged against the same family as its cloak."""
    members = outcome.family.members if outcome.family is not None else frozenset()
    return survival_table(
        pixels,
        engine.measure(pixels),
        measure=engine.measure,
        goal_met=lambda probs: int(np.argmax(probs)) not in members,
        top1=lambda probs: engine.top(probs, 1)[0],
        index=index,
        exclude=index.names.index(name),
    )


def engine_count(name: str, attr: str) -> Callable[[list[CloakOutcome], int], str]:
    return lambda outcomes, n: pct(
        sum(getattr(next(m for m in o.search if m.engine == name), attr) for o in outcomes), n
    )


def summary_rows() -> list[tuple[str, Callable[[list[CloakOutcome], int], str]]]:
    def median_range(values: list[float], fmt: str = ".2f") -> str:
        return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}, {max(values):{fmt}}]"

    return [
        ("out of the whole family (Lite0)", lambda outcomes, n: pct(sum(o.success for o in outcomes), n)),
        ("beats phash (rank > 5 and past threshold)", engine_count("phash", "beaten")),
        ("  phash: past the threshold only", engine_count("phash", "past_threshold")),
        ("beats embedding (rank > 5 and past threshold)", engine_count("embedding", "beaten")),
        ("  embedding: past the threshold only", engine_count("embedding", "past_threshold")),
        ("beats both engines", lambda outcomes, n: pct(sum(o.beats_search for o in outcomes), n)),
        (
            "beats held-out PDQ as delivered",
            lambda outcomes, n: pct(sum(o.survival[0].matches[2].beaten for o in outcomes), n),
        ),
        ("family sizes (classes), median [min, max]", lambda outcomes, n: family_sizes(outcomes)),
        ("L-inf (grey levels), max", lambda outcomes, n: f"{max(o.linf * 255 for o in outcomes):.0f}"),
        ("L2 ([0,1] units), median [min, max]", lambda outcomes, n: median_range([o.l2 for o in outcomes])),
        (
            "RMS change (grey levels), median",
            lambda outcomes, n: f"{statistics.median(o.l2 / np.sqrt(o.cloaked.size) * 255 for o in outcomes):.2f}",
        ),
        ("attack time s, median [min, max]", lambda outcomes, n: median_range([o.attack_seconds for o in outcomes])),
        (
            "with the held-out checks s, median [min, max]",
            lambda outcomes, n: median_range([o.seconds for o in outcomes]),
        ),
    ]


def family_sizes(outcomes: list) -> str:  # type: ignore[type-arg]
    sizes = [len(o.family.members) for o in outcomes if o.family is not None]
    return f"{statistics.median(sizes):.0f} [{min(sizes)}, {max(sizes)}]" if sizes else "-"


def photos_path(name: str) -> str:
    return str(next(p.path for p in gallery_photos() if p.name == name))


if __name__ == "__main__":
    main()

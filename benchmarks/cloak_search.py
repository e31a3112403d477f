"""The default cloak on every offline gallery photo: does it leave the whole family, beat both search engines, and
survive what it never saw? And how long does it take on a 224 px photo with one thread?

For each gallery photo (app/ml/cloak/search.py; >= 20 with the dev extra's Foolbox photos), the photo is scaled to
``--side`` px on its long side and cloaked with the default settings (family goal, search attack on, medium
strength = 4 grey levels, ``--steps`` PGD steps). The search counts the cloaked copy as found when the uploaded
original ranks in the top 5 of the gallery or lies within the engine's threshold; the photo's own gallery
entries are left out (leave-one-out), as for an upload the gallery has never seen. The control row: the
untouched photo under each check (is it still found? does the classifier still say the family?).

Speed: ``--speed-reps`` interleaved cloaks of scikit-image's chelsea at 224x224, median and minimum of the attack
(gradient steps + the verdict on the delivered image) and of the whole cloak with the held-out checks.

Run: ``.venv/bin/python benchmarks/cloak_search.py [--steps 10] [--eps 4] [--threads 1] [--limit N]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.progress import track
from rich.table import Table

from app.ml.cloak.engine import CloakEngine
from app.ml.cloak.heldout import CHECKS, ENGINES, survival_table
from app.ml.cloak.search import gallery_photos, load_photo


def pct(hits: int, n: int) -> str:
    return f"{hits}/{n} ({100 * hits / max(n, 1):.0f}%)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--eps", type=int, default=4, help="grey levels of 255")
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos (0: all)")
    parser.add_argument("--speed-reps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console()
    load_before = os.getloadavg()[0]
    engine = CloakEngine()
    index = engine.search_index()
    photos = gallery_photos()
    photos = photos[: args.limit] if args.limit else photos
    n = len(photos)
    console.print(
        f"gallery {len(index.names)} photos x {len(index.entries) // len(index.names)} entries; thresholds "
        + ", ".join(f"{k} {float(v):.4g}" for k, v in index.thresholds.items())
    )

    outcomes, controls = [], []
    for photo in track(photos, description="cloaking", console=console):
        pixels = load_photo(photo, args.side)
        outcome = engine.cloak(pixels, eps=args.eps / 255, steps=args.steps, leave_out=photo.name)
        outcomes.append(outcome)
        aim_family = outcome.family.members if outcome.family is not None else frozenset()
        controls.append(
            survival_table(
                pixels,
                engine.measure(pixels),
                measure=engine.measure,
                goal_met=lambda probs, members=aim_family: int(np.argmax(probs)) not in members,
                top1=lambda probs: engine.top(probs, 1)[0],
                index=index,
                exclude=index.names.index(photo.name),
            )
        )

    summary = Table(
        title=f"Default cloak on {n} photos ({args.side} px long side, eps {args.eps}/255, {args.steps} steps)"
    )
    summary.add_column("measure")
    summary.add_column("value")
    summary.add_row("out of the whole family (Lite0)", pct(sum(o.success for o in outcomes), n))
    for name in ("phash", "embedding"):
        beaten = sum(next(m for m in o.search if m.engine == name).beaten for o in outcomes)
        past = sum(next(m for m in o.search if m.engine == name).past_threshold for o in outcomes)
        summary.add_row(f"beats {name} (rank > 5 and past threshold)", pct(beaten, n))
        summary.add_row(f"  {name}: past the threshold only", pct(past, n))
    summary.add_row("family sizes (classes), median [min, max]", family_sizes(outcomes))
    linf = [o.linf * 255 for o in outcomes]
    l2 = [o.l2 for o in outcomes]
    rms = [o.l2 / np.sqrt(o.cloaked.size) * 255 for o in outcomes]
    summary.add_row("L-inf (grey levels), max", f"{max(linf):.0f}")
    summary.add_row(
        "L2 ([0,1] units), median [min, max]", f"{statistics.median(l2):.2f} [{min(l2):.2f}, {max(l2):.2f}]"
    )
    summary.add_row("RMS change (grey levels), median", f"{statistics.median(rms):.2f}")
    attack = [o.attack_seconds for o in outcomes]
    total = [o.seconds for o in outcomes]
    summary.add_row("attack time s, median [max]", f"{statistics.median(attack):.2f} [{max(attack):.2f}]")
    summary.add_row("with the held-out checks s, median [max]", f"{statistics.median(total):.2f} [{max(total):.2f}]")
    console.print(summary)

    table = Table(title="Survival per check: cloaked (control: the untouched photo)")
    for column in ("check", "goal Lite0", "goal Lite2", *[f"beats {e}" for e in ENGINES]):
        table.add_column(column)
    for r, (check, _) in enumerate(CHECKS):
        rows = [o.survival[r] for o in outcomes]
        ctrl = [c[r] for c in controls]
        cells = [
            f"{pct(sum(x.goal_met for x in rows), n)} ({sum(x.goal_met for x in ctrl)})",
            f"{pct(sum(bool(x.heldout_goal_met) for x in rows), n)} ({sum(bool(x.heldout_goal_met) for x in ctrl)})",
        ]
        for k, _engine in enumerate(ENGINES):
            cells.append(f"{pct(sum(x.matches[k].beaten for x in rows), n)} ({sum(x.matches[k].beaten for x in ctrl)})")
        table.add_row(check, *cells)
    console.print(table)

    sample = np.array(Image.open(photos_path("chelsea")).convert("RGB").resize((224, 224), Image.Resampling.LANCZOS))
    attack_times, full_times = [], []
    for _ in track(range(args.speed_reps), description="speed", console=console):
        started = time.perf_counter()
        outcome = engine.cloak(sample, eps=args.eps / 255, steps=args.steps)
        full_times.append(time.perf_counter() - started)
        attack_times.append(outcome.attack_seconds)
    console.print(
        f"speed, chelsea 224x224, {args.threads} thread(s), {args.speed_reps} reps: attack median "
        f"{statistics.median(attack_times):.2f} s (min {min(attack_times):.2f}); with the checks median "
        f"{statistics.median(full_times):.2f} s (min {min(full_times):.2f}); attack <= 3 s: "
        f"{statistics.median(attack_times) <= 3.0}; load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after"
    )


def family_sizes(outcomes: list) -> str:  # type: ignore[type-arg]
    sizes = [len(o.family.members) for o in outcomes if o.family is not None]
    return f"{statistics.median(sizes):.0f} [{min(sizes)}, {max(sizes)}]" if sizes else "-"


def photos_path(name: str) -> str:
    return str(next(p.path for p in gallery_photos() if p.name == name))


if __name__ == "__main__":
    main()

"""How long "why the machine fails" takes per round (app/ml/measure/explain.py) for the Fashion CNN on one torch thread.

For each of N stored-like rounds (PGD, L∞ eps 0.1 on the first test images, quantised to uint8 as the service
does) and each repetition, in an order that rotates between repetitions so that other processes' load hits all
alike, it times:

- ``explain``: the whole explanation as the model service runs it (41x41 slice coarse to fine, SmoothGrad with 32
  noisy copies of both images, 41 points along the gradient sign);
- ``slice refined``: the coarse-to-fine slice alone;
- ``slice full``: every one of the 41x41 = 1,681 grid points classified (what the refinement saves), checked
  against the refined grid (the number of points that differ is printed; 0 means the shortcut changed nothing).

Prints medians per round (wall time, and this process's CPU time: with one thread on a shared machine the CPU
time is close to what the wall time would be on an idle one) and the ratios refined/full and explain/full, measured
side by side in one run.
Run: ``nice -n 5 .venv/bin/python benchmarks/explain_speed.py [--rounds 8] [--reps 5] [--threads 1]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress

from app.ml import get_pack, load_opponent
from app.ml.attacks import get_attack
from app.ml.measure.explain import boundary_slice, classify_points, explain, image_to_input, slice_axes, unit_vector
from app.ml.service.explain_contracts import ExplainJob
from app.ml.service.tensors import quantize_within_budget, to_tensor

console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_opponent("fashion-cnn")
    images, labels = get_pack("fashion").load_split("test")
    clean = images[: args.rounds]
    x = to_tensor(clean, torch.device("cpu"))
    y = torch.from_numpy(labels[: args.rounds].astype(np.int64))
    adversarial = get_attack("pgd")(model, x, y, 0.1, generator=torch.Generator().manual_seed(0)).adversarial
    shown = quantize_within_budget(clean, adversarial, np.full(args.rounds, 0.1))
    jobs = [
        ExplainJob("fashion-cnn", clean[i], shown[i], int(labels[i]), 0.1, "linf", seed=i) for i in range(args.rounds)
    ]

    def slice_parts(job: ExplainJob) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
        xi, si = image_to_input(job.clean, model), image_to_input(job.shown, model)
        u = unit_vector((si - xi)[0])
        draw = torch.randn(xi.shape[1:], generator=torch.Generator().manual_seed(job.seed), dtype=torch.float64)
        v = unit_vector(draw - (draw * u).sum() * u)
        a, b, origin, shown_col = slice_axes(float((si - xi).norm()), job.grid_size)
        centre = (job.grid_size - 1) // 2
        return xi, u, v, np.array([a, b]), np.array([[centre, origin], [centre, shown_col]])

    times: dict[str, list[float]] = {"explain": [], "slice refined": [], "slice full": []}
    cpu: dict[str, list[float]] = {name: [] for name in times}
    evaluated: list[int] = []
    mismatches = 0

    def timed(name: str, run: Callable[[], object]) -> object:
        started, started_cpu = time.perf_counter(), time.process_time()
        out = run()
        times[name].append((time.perf_counter() - started) * 1000.0)
        cpu[name].append((time.process_time() - started_cpu) * 1000.0)
        return out

    load = os.getloadavg()[0]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("explaining", total=args.reps * len(jobs))
        try:
            for rep in range(args.reps):
                for job in jobs:
                    xi, u, v, ab, must = slice_parts(job)
                    a, b = ab
                    aa, bb = np.meshgrid(a, b)
                    cells = [(int(r), int(c)) for r, c in must]
                    grid = np.stack([aa.ravel(), bb.ravel()], 1)
                    steps: list[tuple[str, Callable[[], object]]] = [
                        ("explain", partial(explain, model, job)),
                        ("slice refined", partial(boundary_slice, model, xi, u, v, a, b, cells)),
                        ("slice full", partial(classify_points, model, xi, u, v, grid)),
                    ]
                    shift = rep % len(steps)
                    outputs = {name: timed(name, run) for name, run in steps[shift:] + steps[:shift]}
                    refined, count = outputs["slice refined"]  # type: ignore[misc]
                    evaluated.append(count)
                    mismatches += int((outputs["slice full"].reshape(refined.shape) != refined).sum())  # type: ignore[union-attr]
                    progress.advance(task)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: results so far[/yellow]")
    if not times["slice full"]:
        return
    med = {name: statistics.median(values) for name, values in times.items()}
    pairs = zip(times["slice refined"], times["slice full"], strict=False)
    ratio_refined = statistics.median(r / f for r, f in pairs)
    ratio_explain = statistics.median(e / f for e, f in zip(times["explain"], times["slice full"], strict=False))
    console.print(
        f"{dt.date.today()} {platform.node()} {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} thread(s), load {load:.2f} at start, {len(times['explain'])} explanations"
    )
    console.print("| measure | median wall ms per round | median CPU ms per round | min wall ms |\n|---|---|---|---|")
    for name, value in med.items():
        console.print(f"| {name} | {value:.1f} | {statistics.median(cpu[name]):.1f} | {min(times[name]):.1f} |")
    console.print(
        f"ratio slice refined / full: {ratio_refined:.3f}; explain / full slice: {ratio_explain:.3f}; "
        f"points classified by the refined slice: median {statistics.median(evaluated):.0f} of 1681; "
        f"grid points where refined and full differ: {mismatches} in {len(evaluated)} slices"
    )


if __name__ == "__main__":
    main()

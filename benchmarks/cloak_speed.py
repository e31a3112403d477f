"""Cloak speed: one 224x224 photo cloaked with PGD-10 against EfficientNet-Lite0, wall time and its ratio to the
floor, 10 x (one forward+backward of Lite0 on that image, gradient to the input only), measured side by side.

The issue asks for a cloak in <= 2 s on the 2-core CPU. The floor is what any PGD-10 must pay; the ratio shows
what the cloak adds on top: the clean prediction, the final measurement on the delivered 8-bit image, the scoring
of the last iterate, the JPEG-90 and 50% resize survival checks (one forward each) and the PNG-ready arrays.
Repetitions are interleaved (floor, attack loop only, full cloak) so CPU contention from other processes hits all
alike; medians and minima are reported, with the load average before and after. The transfer model (Lite2) is
off, as in a cloak with ``ARENA_CLOAK_TRANSFER=false``; its two forwards are timed separately.

Run: ``.venv/bin/python benchmarks/cloak_speed.py [--reps 10] [--threads 2] [--device cpu|cuda]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from app.ml.cloak.engine import CloakEngine
from app.ml.opponents.imagenet import TRANSFER_TARGET, load_imagenet_model

STEPS = 10
EPS = 4 / 255


def sample_photo() -> np.ndarray:
    import skimage.data

    return np.array(Image.fromarray(skimage.data.chelsea()).resize((224, 224), Image.Resampling.LANCZOS))


def timed(fn: Callable[[], object], sync: Callable[[], None]) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=10, help="interleaved repetitions per contender")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (CPU)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console()
    load_before = os.getloadavg()[0]
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    engine = CloakEngine(device=device)
    lite2 = load_imagenet_model(TRANSFER_TARGET, device=device)
    photo = sample_photo()
    x = engine._tensor(photo)
    label = torch.tensor([int(engine.probabilities(photo).argmax())], device=device)

    def floor() -> None:
        for _ in range(STEPS):
            xx = x.detach().requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(engine.model(xx), label)
            torch.autograd.grad(loss, xx)

    outcomes = []

    def cloak() -> None:
        outcomes.append(engine.cloak(photo, eps=EPS, steps=STEPS, goal="untargeted", search=False))

    def transfer() -> None:
        engine.probabilities(photo, model=lite2)
        engine.probabilities(photo, model=lite2)

    contenders: dict[str, Callable[[], None]] = {"floor": floor, "cloak": cloak, "lite2 x2": transfer}
    for fn in contenders.values():  # warm-up (allocator, first-call overheads)
        fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("cloak benchmark", total=args.reps)
        for rep in range(args.reps):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for name in order:
                times[name].append(timed(contenders[name], sync))
            progress.advance(task)
    load_after = os.getloadavg()[0]

    table = Table(title=f"Cloak of one 224x224 photo, PGD-{STEPS}, eps {EPS * 255:.0f}/255, EfficientNet-Lite0")
    table.add_column("statistic")
    table.add_column(f"{STEPS} x fwd+bwd (floor)")
    table.add_column("full cloak")
    table.add_column("ratio cloak / floor")
    table.add_column("Lite2 transfer check (2 forwards)")
    for label_, stat in (("median", statistics.median), ("minimum", min)):
        f, c, t = stat(times["floor"]), stat(times["cloak"]), stat(times["lite2 x2"])
        table.add_row(label_, f"{f * 1000:.0f} ms", f"{c * 1000:.0f} ms", f"{c / f:.3f}", f"{t * 1000:.0f} ms")
    console.print(table)
    success = sum(o.success for o in outcomes)
    device_name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    console.print(
        f"device {device} ({device_name}), {args.threads} threads, {args.reps} interleaved reps, load average "
        f"{load_before:.2f} before / {load_after:.2f} after; cloaks that changed the label: {success}/{len(outcomes)};"
        f" median cloak <= 2 s: {statistics.median(times['cloak']) <= 2.0}"
    )


if __name__ == "__main__":
    main()

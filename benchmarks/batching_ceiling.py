"""The most any batcher can gain on this machine: the attack itself at batch 1 vs batch B, per image.

The model service's batching ratio (benchmarks/round_creation.py) cannot exceed what the hardware gives a bigger
batch. This measures that ceiling directly, without the service: PGD-20 (what a round runs) on fashion-cnn, one
image at a time (B calls of batch 1) against the same B images in one call, with the same torch thread count, and
the same for one forward+backward pass (the attack's unit of work). Trials are interleaved and the ratio is the
median of paired trials, so machine noise hits both sides alike.
Usage: python benchmarks/batching_ceiling.py [--batch 64] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from app.ml import get_attack, load_opponent
from app.ml.packs import get_pack


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the model service's worker uses 1)")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_opponent("fashion-cnn")
    images, labels = get_pack("fashion").tensors("test", n=args.batch)
    pgd = get_attack("pgd", steps=args.steps)
    eps = 8 / 255

    def attack_one_by_one() -> None:
        for i in range(args.batch):
            pgd(model, images[i : i + 1], labels[i : i + 1], eps, generator=torch.Generator().manual_seed(i))

    def attack_batched() -> None:
        pgd(model, images, labels, eps, generator=[torch.Generator().manual_seed(i) for i in range(args.batch)])

    def fwd_bwd(x: torch.Tensor, y: torch.Tensor) -> None:
        x = x.clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)

    def pass_one_by_one() -> None:
        for i in range(args.batch):
            fwd_bwd(images[i : i + 1], labels[i : i + 1])

    def pass_batched() -> None:
        fwd_bwd(images, labels)

    model.requires_grad_(False)
    for fn in (attack_one_by_one, attack_batched, pass_one_by_one, pass_batched):  # warm-up (oneDNN kernel choice)
        fn()
    pairs: dict[str, list[tuple[float, float]]] = {f"PGD-{args.steps} attack": [], "one forward+backward": []}
    for rep in range(args.repeats):
        order = [(f"PGD-{args.steps} attack", attack_one_by_one, attack_batched)]
        order.append(("one forward+backward", pass_one_by_one, pass_batched))
        for name, single, batched in order if rep % 2 == 0 else reversed(order):
            if rep % 2:
                b, s = timed(batched), timed(single)
            else:
                s, b = timed(single), timed(batched)
            pairs[name].append((s, b))
    load = os.getloadavg()
    print(
        f"# batching ceiling: fashion-cnn, batch {args.batch}, {args.threads} torch thread(s), {args.repeats} "
        f"repeats; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print("| work | one at a time, ms/image | batched, ms/image | ratio (median of paired trials) |")
    print("| --- | --- | --- | --- |")
    for name, trials in pairs.items():
        single = statistics.median(s for s, _ in trials) / args.batch * 1000
        batched = statistics.median(b for _, b in trials) / args.batch * 1000
        ratio = statistics.median(s / b for s, b in trials)
        print(f"| {name} | {single:.2f} | {batched:.2f} | **{ratio:.2f}×** |")


if __name__ == "__main__":
    main()

"""PGD overhead: the time of one PGD-10 attack on a batch of 128 Fashion-MNIST test images, divided by the time
of 10 x (one forward+backward of the same batch), measured side by side.

Why this ratio: a PGD step cannot be cheaper than the model's forward pass plus the backward pass to the input,
so the ratio isolates what the attack adds (projection, random start, argument checks, state bookkeeping and the
final forward that measures success). The baseline is the least a step needs: weights frozen, gradient taken
with ``torch.autograd.grad`` with respect to the input only.

Repetitions are interleaved (baseline, PGD, [torchattacks], in rotating order) so that CPU contention from other
processes hits all contenders alike; medians and minima are reported. torchattacks is optional and only compared
when it is importable (e.g. ``pip install --target /tmp/ta --no-deps torchattacks scipy`` and ``PYTHONPATH=/tmp/ta``).

Run: ``.venv/bin/python benchmarks/pgd_overhead.py [--reps 30] [--threads 2]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from app.ml import get_attack, get_pack, load_opponent

BATCH = 128
STEPS = 10
EPS = 0.1


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=30, help="interleaved repetitions per contender")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = _load()

    model = load_opponent("fashion-cnn")
    images, labels = get_pack(model.pack_name).tensors("test", n=BATCH)
    attack = get_attack("pgd", steps=STEPS, random_start=True)
    generator = torch.Generator().manual_seed(0)
    x = images.clone().requires_grad_(True)

    def baseline() -> None:
        for _ in range(STEPS):
            loss = F.cross_entropy(model(x), labels, reduction="sum")
            torch.autograd.grad(loss, x)

    def ours() -> None:
        attack(model, images, labels, EPS, generator=generator)

    def final_forward() -> None:
        with torch.no_grad():
            model(images)

    contenders: dict[str, Callable[[], None]] = {"baseline": baseline, "arena": ours, "forward": final_forward}
    try:
        import torchattacks  # type: ignore[import-not-found, unused-ignore]

        ta = torchattacks.PGD(model, eps=EPS, alpha=2.5 * EPS / STEPS, steps=STEPS, random_start=True)
        contenders["torchattacks"] = lambda: ta(images, labels)
        ta_version = torchattacks.__version__
    except ImportError:
        ta_version = None

    names = list(contenders)
    for name in names:  # warm-up: oneDNN picks kernels and allocates on the first calls
        for _ in range(2):
            contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(args.reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            times[name].append(timed(contenders[name]))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}, PGD-{STEPS}, eps {EPS}")
    print(f"{args.reps} interleaved repetitions; load average before/after: {load_before} / {_load()}")
    # The median is the usual summary; the minimum is the better estimate of the intrinsic cost when other
    # processes share the CPU, since contention only ever adds time.
    for label, stat in (("median", statistics.median), ("minimum", min)):
        print(f"[{label} of {args.reps}]")
        report({name: stat(ts) for name, ts in times.items()}, ta_version)


def _load() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def report(times: dict[str, float], ta_version: str | None) -> None:
    base, forward = times["baseline"], times["forward"]
    print(f"  10 x forward+backward: {base * 1000:.1f} ms")
    print(f"  one no-grad forward (the success check): {forward * 1000:.1f} ms = {forward / base:.3f} of the baseline")
    ours = times["arena"]
    print(f"  app.ml pgd: {ours * 1000:.1f} ms, overhead ratio {ours / base:.3f}")
    print(f"    without its final success forward: {(ours - forward) / base:.3f}")
    if "torchattacks" in times:
        theirs = times["torchattacks"]
        print(f"  torchattacks {ta_version} PGD: {theirs * 1000:.1f} ms, overhead ratio {theirs / base:.3f}")
        # torchattacks returns images only; the caller pays one more forward to learn which samples succeeded.
        print(f"    plus the forward a caller needs for a success mask: {(theirs + forward) / base:.3f}")


if __name__ == "__main__":
    main()

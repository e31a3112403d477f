"""PGD at the compute limit: the ideas tried for fixed PGD-10 and for early-stopping PGD, each measured as a ratio
to the floor (10 x one forward+backward of the same batch of 128 Fashion-MNIST test images), side by side.

Contenders (interleaved, each paired with its own floor run):
- ``pgd10``: ``get_attack("pgd", steps=10)``, the shipped fixed-step PGD (its success forward included);
- ``success-forward no_grad`` / ``success-forward inference_mode``: the one forward the base class spends on
  the final images, under either mode (is the cheaper mode worth it?);
- ``pgd10 channels_last input``: the same attack on a channels_last copy of the batch; ``... model+input``: on a
  channels_last copy of the model too, next to the floor of that copy (a model change, not attack overhead);
- ``early stop exact`` / ``early stop bucketed``: ``early_stop=True`` with the active set run at its exact size
  (shipped) or padded to ``forward_bucketed`` sizes; a fresh batch of images each repetition, so that the
  shrinking active-set sizes are not the same every time (which would flatter the exact sizes).

Run: ``.venv/bin/python benchmarks/pgd_variants.py [--reps 6] [--threads 1]``
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from app.ml import get_attack, get_pack, load_opponent
from app.ml.attacks.common import forward_bucketed
from app.ml.measure.machine import load_average, machine_line

BATCH = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_opponent("fashion-cnn")
    all_x, all_y = get_pack(model.pack_name).tensors("test", n=BATCH * (2 * args.reps + 3))
    x, y = all_x[:BATCH], all_y[:BATCH]
    xr = x.clone().requires_grad_(True)
    fixed = get_attack("pgd", steps=10)
    early = get_attack("pgd", steps=10, early_stop=True)

    def floor() -> None:
        for _ in range(10):
            torch.autograd.grad(F.cross_entropy(model(xr), y, reduction="sum"), xr)

    def success_no_grad() -> None:
        with torch.no_grad():
            model(x).argmax(1)

    def success_inference() -> None:
        with torch.inference_mode():
            model(x).argmax(1)

    x_cl = x.contiguous(memory_format=torch.channels_last)
    model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    xr_cl = x_cl.clone().requires_grad_(True)

    def floor_cl() -> None:
        for _ in range(10):
            torch.autograd.grad(F.cross_entropy(model_cl(xr_cl), y, reduction="sum"), xr_cl)

    counter = {"k": 0}

    def early_run(bucketed: bool) -> Callable[[], None]:
        def run() -> None:
            counter["k"] += 1
            k = counter["k"] % (2 * args.reps + 2) + 1
            xs, ys = all_x[BATCH * k : BATCH * (k + 1)], all_y[BATCH * k : BATCH * (k + 1)]
            if bucketed:
                unpadded = model.forward

                def padded(t: torch.Tensor) -> torch.Tensor:
                    return forward_bucketed(unpadded, t)

                model.forward = padded  # type: ignore[method-assign]
            try:
                early(model, xs, ys, 0.1, generator=torch.Generator().manual_seed(0))
            finally:
                if bucketed:
                    del model.forward

        return run

    contenders: dict[str, Callable[[], None]] = {
        "pgd10": lambda: fixed(model, x, y, 0.1, generator=torch.Generator().manual_seed(0)),
        "success-forward no_grad": success_no_grad,
        "success-forward inference_mode": success_inference,
        "pgd10 channels_last input": lambda: fixed(model, x_cl, y, 0.1, generator=torch.Generator().manual_seed(0)),
        "pgd10 channels_last model+input": lambda: fixed(
            model_cl, x_cl, y, 0.1, generator=torch.Generator().manual_seed(0)
        ),
        "floor on the channels_last model": floor_cl,
        "early stop exact": early_run(False),
        "early stop bucketed": early_run(True),
    }
    for fn in [floor, *contenders.values()]:
        fn()
    ratios: dict[str, list[float]] = {k: [] for k in contenders}
    floors: list[float] = []
    names = list(contenders)
    load_before = load_average()
    for rep in range(args.reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            start = time.perf_counter()
            floor()
            base = time.perf_counter() - start
            floors.append(base)
            start = time.perf_counter()
            contenders[name]()
            ratios[name].append((time.perf_counter() - start) / base)
    print(machine_line())
    print(
        f"batch {BATCH}, eps 0.1, {args.reps} interleaved repetitions, load average {load_before} -> {load_average()}"
    )
    print(f"floor (10 x fwd+bwd): median {statistics.median(floors) * 1000:.0f} ms")
    for name in names:
        print(
            f"  {name:32s} median ratio to floor {statistics.median(ratios[name]):.3f}  (min {min(ratios[name]):.3f})"
        )


if __name__ == "__main__":
    main()

"""The machine's smallest successful attack (app/ml/measure/smallest.py) on the first N test images of fashion-cnn:
per norm, the attack, whether it fooled, pixels changed, L2, L∞ in grey levels and the seconds it took on one torch
thread. What a painter is compared with (issue #21), and what the search costs once per image.

Usage: python benchmarks/smallest_attacks.py [--images 3] [--norms l0 l2 linf]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from app.ml import get_pack, load_opponent
from app.ml.measure.smallest import smallest_attack
from app.ml.service.classify_contracts import NORMS, SmallestJob


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--norms", nargs="+", default=list(NORMS), choices=NORMS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_opponent("fashion-cnn")
    images, labels = get_pack("fashion").load_split("test")
    seconds: dict[str, list[float]] = {norm: [] for norm in args.norms}
    print("image norm attack found pixels l2 linf_levels seconds")
    for index in range(args.images):
        for norm in args.norms:
            started = time.perf_counter()
            job = SmallestJob("fashion-cnn", index, norm)
            result = smallest_attack(model, images[index], int(labels[index]), job, torch.device("cpu"))
            elapsed = time.perf_counter() - started
            seconds[norm].append(elapsed)
            print(
                f"{index} {norm} {result.attack} {result.found} {result.pixels} {result.l2:.3f} "
                f"{round(result.linf * 255)} {elapsed:.2f}"
            )
    for norm, values in seconds.items():
        print(f"{norm}: median {statistics.median(values):.2f} s, max {max(values):.2f} s over {len(values)} images")


if __name__ == "__main__":
    main()

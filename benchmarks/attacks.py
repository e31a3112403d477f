"""Attack benchmark: every registered attack on Fashion-MNIST test images against the fashion-cnn opponent, with
torchattacks side by side where it has the same attack, and the PGD-10 / CW-L2 ratios to their compute floor.

Prints a Markdown table (the format of benchmarks/RESULTS.md). Definitions are in :mod:`app.ml.measure.bench`.

Run: ``.venv/bin/python benchmarks/attacks.py [--reps 5] [--only cw,pgd]``
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys

import torch

from app.ml import get_pack, load_opponent
from app.ml.measure.bench import DEFAULT_SUITE, format_attack_bench, run_attack_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions for the ratio runs")
    parser.add_argument("--only", default="", help="comma-separated attack names (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    model = load_opponent("fashion-cnn")
    images, labels = get_pack(model.pack_name).tensors("test", n=128)
    suite = DEFAULT_SUITE
    if args.only:
        wanted = args.only.split(",")
        suite = {k: v for k, v in DEFAULT_SUITE.items() if k in wanted}
    rows, ratios = run_attack_bench(model, images, labels, suite=suite, reps=args.reps, seed=args.seed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(format_attack_bench(rows, ratios))


if __name__ == "__main__":
    main()

"""Seconds per image of the standard AutoAttack chunk on Defense-GAN, querying the batched projection view against
the deployed per-image one, on the same images, side by side in one run.

Both runs use :func:`app.ml.measure.autoattack_chunks.attack_chunk` (every candidate judged by the deployed model);
only the view the attack queries differs. Square's 5,000 queries can be cut with --square-queries to keep the run
short (the report says so): Square costs one query per robust image per iteration, so its seconds scale with them.
Also times one forward of the images through each view (the cost of one query).

    OMP_NUM_THREADS=1 python benchmarks/autoattack_views.py --n 4 --square-queries 100 --repeat 2
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from app.ml.measure.autoattack_chunks import attack_chunk, query_view
from app.ml.opponents.registry import load_opponent
from app.ml.packs import get_pack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--opponent", default="fashion-defgan")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--square-queries", type=int, default=100)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--forwards", type=int, default=20, help="forwards of the images timed per view")
    parser.add_argument("--repeat", type=int, default=1, help="alternate the two views this many times each")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_opponent(args.opponent)
    images, labels = get_pack("fashion").tensors("test", n=args.start + args.n)
    images, labels = images[args.start :], labels[args.start :]
    print(f"{args.opponent}: images {args.start}..{args.start + args.n - 1}, Square queries {args.square_queries}")
    print(f"load average before: {os.getloadavg()}")
    for batched in [False, True] * args.repeat:
        view = query_view(model, batched=batched)
        with torch.no_grad():
            t = time.perf_counter()
            for _ in range(args.forwards):
                view(images)
            per_query = (time.perf_counter() - t) / (args.forwards * args.n)
        out = attack_chunk(model, images, labels, args.eps, 0, batched_view=batched, square_queries=args.square_queries)
        name = "batched" if batched else "per-image"
        print(
            f"{name:9s}: one query {per_query * 1e3:.2f} ms per image; chunk {out['seconds']:.1f} s = "
            f"{out['seconds'] / args.n:.1f} s per image, components {out['component_seconds']}, "
            f"queries {out['queries']}, robust {sum(out['robust'])}/{args.n}, broken by {out['broken_by']}",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

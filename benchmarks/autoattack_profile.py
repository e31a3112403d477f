"""Where standard AutoAttack's time goes on one opponent: seconds, model forwards and images per component.

Runs torchattacks' AutoAttack components one after the other exactly as its MultiAttack does (each on the images
the ones before left correct), timing each and counting forwards of the attacked view and (for Defense-GAN) the
per-image projections. Square's queries can be cut with --square-queries to time it per query (the report says so):
every robust image costs one forward per query for all 5,000 queries, so seconds per query per image extrapolates.

    OMP_NUM_THREADS=1 python benchmarks/autoattack_profile.py --opponent fashion-defgan --n 5 --square-queries 100
"""

from __future__ import annotations

import argparse
import time

import torch

import app.ml.defenses.defense_gan as defense_gan
from app.ml.measure.autoattack import build_autoattack
from app.ml.opponents.registry import load_opponent, opponent_spec
from app.ml.packs import get_pack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--opponent", default="fashion-defgan")
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--square-queries", type=int, default=5000)
    parser.add_argument("--eps", type=float, default=0.1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_opponent(args.opponent)
    images, labels = get_pack(opponent_spec(args.opponent).pack_name).tensors("test", n=args.start + args.n)
    images, labels = images[args.start :], labels[args.start :]
    attack = build_autoattack(model, args.eps, seed=0)
    view = attack.model
    counts = {"forwards": 0, "images": 0, "projected": 0, "projection_s": 0.0}

    def count_forward(_module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        counts["forwards"] += 1
        counts["images"] += inputs[0].shape[0]

    view.register_forward_pre_hook(count_forward)
    project = defense_gan.project_onto_range

    def timed_projection(*a, **k):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        out = project(*a, **k)
        counts["projection_s"] += time.perf_counter() - t
        counts["projected"] += a[1].shape[0]
        return out

    defense_gan.project_onto_range = timed_projection
    with torch.no_grad():
        clean_ok = model(images).argmax(1) == labels
    print(f"{args.opponent}: images {args.start}..{args.start + args.n - 1}, clean correct {int(clean_ok.sum())}")
    fails = torch.arange(args.n)
    for sub in attack._autoattack.attacks:
        if type(sub).__name__ == "Square":
            sub.n_queries = args.square_queries
        before = dict(counts)
        t = time.perf_counter()
        adv = sub(images[fails], labels[fails])
        with torch.no_grad():
            still = model(adv).argmax(1) == labels[fails]
        dt = time.perf_counter() - t
        line = (
            f"{type(sub).__name__:6s} in {len(fails):4d} images, left correct {int(still.sum()):4d}: {dt:8.1f} s, "
            f"forwards {counts['forwards'] - before['forwards']:6d}, images forwarded "
            f"{counts['images'] - before['images']:7d}, projections {counts['projected'] - before['projected']:7d} "
            f"({counts['projection_s'] - before['projection_s']:.1f} s)"
        )
        if type(sub).__name__ == "Square":
            line += f"; queries {sub.n_queries}"
        print(line, flush=True)
        fails = fails[still.cpu()]
        if len(fails) == 0:
            break


if __name__ == "__main__":
    main()

"""Does a cloak made on EfficientNet-Lite0 also fool the bigger EfficientNet-Lite2, and does it survive JPEG-90 and
a 50% resize? Rates over the natural-image pack's photos, per strength, with and without EOT, in one run.

Small n (the offline sample photos): read the rates as an illustration, not a measurement with tight intervals.

Run: ``.venv/bin/python benchmarks/cloak_transfer.py [--steps 10] [--threads 1]``
"""

from __future__ import annotations

import argparse
import os

import torch
from rich.console import Console
from rich.progress import track
from rich.table import Table

from app.ml.cloak.engine import CloakEngine
from app.ml.cloak.uploads import validate_upload
from app.ml.packs.natural import available_photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-side", type=int, default=512)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console()
    engine = CloakEngine(with_transfer=True)
    photos = available_photos(engine.class_names)
    pixels = [validate_upload(p.path.read_bytes(), max_side=args.max_side).pixels for p in photos]
    table = Table(title=f"Lite0 cloaks, PGD-{args.steps}, on {len(photos)} photos (n per cell = {len(photos)})")
    for column in (
        "eps (grey levels)",
        "EOT",
        "Lite0 fooled",
        "JPEG-90 survives",
        "resize-50% survives",
        "Lite2 fooled (transfer)",
        "mean L2",
        "mean seconds",
    ):
        table.add_column(column)
    cases = [(levels, eot) for eot in (False, True) for levels in (2, 4, 8)]
    for levels, eot in track(cases, description="cloaking", console=console):
        outcomes = [
            engine.cloak(p, eps=levels / 255, steps=args.steps, eot=eot, goal="untargeted", search=False)
            for p in pixels
        ]
        n = len(outcomes)
        table.add_row(
            str(levels),
            "yes" if eot else "no",
            f"{sum(o.success for o in outcomes)}/{n}",
            f"{sum(o.survival[0].survives for o in outcomes)}/{n}",
            f"{sum(o.survival[1].survives for o in outcomes)}/{n}",
            f"{sum(bool(o.transfer_fooled) for o in outcomes)}/{n}",
            f"{sum(o.l2 for o in outcomes) / n:.2f}",
            f"{sum(o.seconds for o in outcomes) / n:.1f}",
        )
    console.print(table)
    console.print(f"photos: {', '.join(p.name for p in photos)}; {args.threads} threads; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""Is a round's image a pure function of its stored recipe? Regenerates N image jobs (PGD-20, fashion-cnn, CPU)
under different worker thread counts and batch sizes and counts how many PNGs are byte-identical to the reference
run (1 thread, batches of 1). Not a timing benchmark: it answers "does the batch or the thread count change the
pixels?", which the science-mode export relies on (tests/stats/test_reproduce_round.py checks one round).

    nice -n 5 .venv/bin/python benchmarks/reproduce_rounds.py --jobs 32
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses

from app.images import to_png
from app.ml.service.contracts import ImageJob
from app.ml.service.in_process import InProcessModelService


def make_jobs(count: int, attack: str, steps: int) -> list[ImageJob]:
    pinned = {"any_image": False} if "any_image" in {f.name for f in dataclasses.fields(ImageJob)} else {}
    params = {"steps": steps, "random_start": True} if attack == "pgd" else {}
    return [
        ImageJob(
            opponent="fashion-cnn",
            attack=attack,
            params=ImageJob.freeze_params(params),
            image_index=11 * k,
            eps=(4 + k % 8) / 255,
            seed=1000 + k,
            **pinned,
        )
        for k in range(count)
    ]


async def generate(jobs: list[ImageJob], *, threads: int, max_batch: int) -> tuple[list[bytes], int]:
    service = InProcessModelService(
        opponents=["fashion-cnn"],
        device="cpu",
        torch_threads=threads,
        max_batch=max_batch,
        max_wait_ms=20,
        timeout_s=1200,
    )
    await service.start()
    try:
        results = await asyncio.gather(*(service.generate(job) for job in jobs))
        return [to_png(r.adversarial) for r in results], int((await service.health())["batches_run"])
    finally:
        await service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=32)
    parser.add_argument("--attack", default="pgd")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    jobs = make_jobs(args.jobs, args.attack, args.steps)
    reference, batches = asyncio.run(generate(jobs, threads=1, max_batch=1))
    print(f"reference: 1 thread, max_batch 1 ({batches} batches) for {len(jobs)} jobs")
    for threads, max_batch in ((1, args.jobs), (2, 1), (2, args.jobs)):
        got, batches = asyncio.run(generate(jobs, threads=threads, max_batch=max_batch))
        same = sum(a == b for a, b in zip(reference, got, strict=True))
        label = f"{threads} thread(s), max_batch {max_batch:3d} ({batches:2d} batches)"
        print(f"{label}: {same}/{len(jobs)} PNGs identical")


if __name__ == "__main__":
    main()

"""What GET /api/v1/stats costs: app.stats.science.group_stats on synthetic trials with the kappa bootstrap (1000
resamples) as it was (plain loops over random.choices, kept in tests/stats/reference_bootstrap.py), as it is
(vectorised, app/stats/consistency.py), and without it (resamples=0), side by side in one run, one torch/BLAS
thread. Each figure is the best of --repeat runs.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/stats_table.py
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.stats import science  # noqa: E402
from app.stats.consistency import BOOTSTRAP_RESAMPLES  # noqa: E402
from app.stats.trials import Trial  # noqa: E402
from tests.stats import reference_bootstrap  # noqa: E402

ESTIMATES = ("people_vs_model", "each_person_vs_model", "people_vs_people")


def synthetic(answers: int, room: int, images: int, seed: int = 0) -> list[Trial]:
    """``answers`` own-pace trials over 2 attacks x 8 budgets, plus a together event: ``room`` people x ``images``."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    trials = []

    def add(player: str, shared: str | None, attack: str, grey: int) -> None:
        human, model = rng.random() < 0.8 - grey / 60, rng.random() < 0.4 - grey / 60
        n = len(trials)
        trials.append(
            Trial(
                answer_id=str(n),
                answered_at=now,
                player_id=player,
                round_id=str(n),
                shared_image=shared,
                event="EVENT1" if shared else None,
                pack="fashion",
                opponent="fashion-cnn",
                attack=attack,
                norm="linf",
                condition="adversarial",
                eps=grey / 255,
                true_label=0,
                human_answer=0 if human else 1,
                model_answer=0 if model else 2,
                human_correct=human,
                model_correct=model,
            )
        )

    for _ in range(answers):
        add(f"p{rng.randrange(200)}", None, rng.choice(("pgd", "fgsm")), rng.choice((2, 3, 4, 6, 8, 11, 14, 18)))
    for j in range(images):
        for person in range(room):
            add(f"r{person}", f"s{j}", "pgd", 8)
    return trials


@contextmanager
def loops() -> Iterator[None]:
    """science.group_stats with the bootstrap it had before it was vectorised."""
    saved = {name: getattr(science, name) for name in ESTIMATES}
    for name in ESTIMATES:
        setattr(science, name, getattr(reference_bootstrap, name))
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(science, name, function)


def timed(trials: list[Trial], group_by: tuple[str, ...], resamples: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        science.group_stats(trials, group_by, resamples=resamples)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print("answers  room x images  grouping  loops (before)  vectorised  speed-up  no bootstrap")
    for answers, room, images in ((1_000, 30, 20), (10_000, 30, 20), (10_000, 100, 40)):
        trials = synthetic(answers, room, images)
        for name, group_by in (("default", science.DEFAULT_GROUP_BY), ("none", ())):
            with loops():
                before = timed(trials, group_by, BOOTSTRAP_RESAMPLES, args.repeat)
            after = timed(trials, group_by, BOOTSTRAP_RESAMPLES, args.repeat)
            off = timed(trials, group_by, 0, args.repeat)
            print(
                f"{len(trials):7d}  {room:4d} x {images:3d}     {name:8s}  {before:11.2f} s  {after:8.3f} s"
                f"  {before / after:7.1f}x  {off:9.3f} s"
            )


if __name__ == "__main__":
    main()

"""What GET /api/v1/stats costs: app.stats.science.group_stats on synthetic trials, with the kappa bootstrap
(1000 resamples) and without it (resamples=0), side by side in one run.

    nice -n 5 .venv/bin/python benchmarks/stats_table.py
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from app.stats import science
from app.stats.consistency import BOOTSTRAP_RESAMPLES
from app.stats.trials import Trial


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


def timed(trials: list[Trial], group_by: tuple[str, ...], resamples: int) -> float:
    start = time.perf_counter()
    science.group_stats(trials, group_by, resamples=resamples)
    return time.perf_counter() - start


def main() -> None:
    print("answers  room x images  grouping  with bootstrap  without  ratio")
    for answers, room, images in ((1_000, 30, 20), (10_000, 30, 20), (10_000, 100, 40)):
        trials = synthetic(answers, room, images)
        for name, group_by in (("default", science.DEFAULT_GROUP_BY), ("none", ())):
            on = timed(trials, group_by, BOOTSTRAP_RESAMPLES)
            off = timed(trials, group_by, 0)
            print(
                f"{len(trials):7d}  {room:4d} x {images:3d}     {name:8s}  {on:10.2f} s  {off:7.3f} s  {on / off:6.0f}x"
            )


if __name__ == "__main__":
    main()

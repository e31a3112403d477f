"""What GET /api/v1/stats costs: app.stats.science.group_stats on synthetic trials with the kappa bootstrap (1000
resamples) as it was (plain loops over random.choices, kept in tests/stats/reference_bootstrap.py), as it is
(vectorised, app/stats/consistency.py), and without it (resamples=0), side by side in one run, one torch/BLAS
thread. Each figure is the best of --repeat runs. Then, on a SQLite file of --answers answered rounds (28x28 PNGs
as the game stores them), what one request reads before its numbers: the trials as ORM records with their images
(before) and as plain columns (app/stats/trials.load_trials now), and the cache key (app/stats/cache.answers_mark),
which is all a cache hit reads.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/stats_table.py
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from sqlalchemy import create_engine, insert, select  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from app.db import migrate  # noqa: E402
from app.db.session import open_database, sync_url  # noqa: E402
from app.db.tables import AnswerRecord, EventRecord, PlayerRecord, RoundRecord  # noqa: E402
from app.game.disclosure import settled  # noqa: E402
from app.images import to_png  # noqa: E402
from app.stats import science  # noqa: E402
from app.stats.cache import answers_mark  # noqa: E402
from app.stats.consistency import BOOTSTRAP_RESAMPLES  # noqa: E402
from app.stats.trials import CLASSIFY, Trial, load_trials  # noqa: E402
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


def seed_database(url: str, answers: int) -> None:
    """``answers`` answered rounds by 200 players, each round with two 28x28 PNGs (noise, as attacked images are)."""
    migrate.upgrade(url)
    rng = np.random.default_rng(0)
    now = datetime.now(UTC)
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        conn.execute(
            insert(PlayerRecord),
            [{"id": f"p{i:03d}", "nickname": f"p{i}", "token_hash": f"t{i}", "created_at": now} for i in range(200)],
        )
        for start in range(0, answers, 1000):
            count = min(1000, answers - start)
            rounds, answered = [], []
            for n in range(start, start + count):
                pngs = [to_png(rng.integers(0, 256, (28, 28), dtype=np.uint8)) for _ in range(2)]
                rounds.append(
                    {
                        "id": f"r{n:06d}",
                        "player_id": f"p{n % 200:03d}",
                        "created_at": now,
                        "pack": "fashion",
                        "opponent": "fashion-cnn",
                        "attack": "pgd",
                        "attack_params": {"steps": 20},
                        "eps": (n % 8 + 2) / 255,
                        "norm": "linf",
                        "image_index": n,
                        "seed": n,
                        "true_label": n % 10,
                        "clean_label": n % 10,
                        "clean_confidence": 0.9,
                        "model_label": (n * 7) % 10,
                        "model_confidence": 0.8,
                        "model_probs": [0.1] * 10,
                        "linf": (n % 8 + 2) / 255,
                        "clean_png": pngs[0],
                        "adversarial_png": pngs[1],
                    }
                )
                answered.append(
                    {
                        "id": f"a{n:06d}",
                        "round_id": f"r{n:06d}",
                        "player_id": f"p{n % 200:03d}",
                        "created_at": now,
                        "choice": (n * 3) % 10,
                        "correct": (n * 3) % 10 == n % 10,
                        "model_correct": (n * 7) % 10 == n % 10,
                        "points": 0,
                        "response_ms": 3000,
                    }
                )
            conn.execute(insert(RoundRecord), rounds)
            conn.execute(insert(AnswerRecord), answered)
    engine.dispose()


async def records_with_images(session: AsyncSession) -> int:
    """How load_trials read before: whole records (images included) through the ORM."""
    query = (
        select(AnswerRecord, RoundRecord, EventRecord.code)
        .join(RoundRecord, RoundRecord.id == AnswerRecord.round_id)
        .outerjoin(EventRecord, EventRecord.id == RoundRecord.event_id)
        .where(settled(), RoundRecord.task == CLASSIFY)
        .order_by(AnswerRecord.created_at, AnswerRecord.id)
    )
    return len((await session.execute(query)).all())


async def reads(url: str, repeat: int) -> dict[str, float]:
    database = open_database(url)
    best: dict[str, float] = {}
    try:
        for _ in range(repeat):
            for name, read in (
                ("records", records_with_images),
                ("columns", load_trials),
                ("mark", answers_mark),
            ):
                async with database.sessionmaker() as session:
                    start = time.perf_counter()
                    await read(session)
                    best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    finally:
        await database.dispose()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--answers", type=int, default=10_000, help="answered rounds in the SQLite file")
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
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/stats.db"
        seed_database(url, args.answers)
        best = asyncio.run(reads(url, args.repeat))
    print(f"\nreading {args.answers} answered rounds from SQLite (on the event loop)")
    print(f"  records with images (before): {best['records']:.3f} s")
    print(f"  trial columns (load_trials):  {best['columns']:.3f} s")
    print(f"  cache key (answers_mark):     {best['mark'] * 1000:.1f} ms  (all a cache hit reads)")


if __name__ == "__main__":
    main()

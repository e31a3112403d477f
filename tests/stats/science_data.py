"""A small, fully known data set for the science-mode statistics, written straight into a test database.

Own-pace players answer rounds over two attacks, three L-inf budgets, an L2 budget and two conditions; a
"together" event has three closed shared images answered by four people, and one image still counting down whose
answers must not be counted anywhere."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.db.session import sync_url
from app.db.tables import AnswerRecord, EventRecord, PlayerRecord, RoundRecord, SharedRoundRecord
from app.images import to_png

EVENT_CODE = "SKY234"
DAY = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _png(value: int) -> bytes:
    pixels = np.full((28, 28), value % 256, dtype=np.uint8)
    pixels[value % 28, :] = 255 - value % 256
    return to_png(pixels)


@dataclass
class Counter:
    value: int = 0

    def next(self) -> int:
        self.value += 1
        return self.value


def _round_columns(rng: random.Random, n: int, *, true_label: int, model_right: bool) -> dict[str, object]:
    model_label = true_label if model_right else (true_label + 1 + rng.randrange(9)) % 10
    probs = [0.01] * 10
    probs[model_label] = 0.91
    return {
        "image_index": n,
        "seed": 1000 + n,
        "true_label": true_label,
        "clean_label": true_label,
        "clean_confidence": 0.99,
        "model_label": model_label,
        "model_confidence": 0.91,
        "model_probs": probs,
        "linf": 0.0,
        "clean_png": _png(n),
        "adversarial_png": _png(n + 1),
    }


def seed_science_data(database_url: str) -> dict[str, int]:
    """Write the data set; returns a few counts the tests check against."""
    rng = random.Random(7)
    ids = Counter()
    engine = create_engine(sync_url(database_url))
    counted = 0
    with Session(engine) as session:
        solo = [
            PlayerRecord(id=f"solo{i}", nickname=f"solo {i}", token_hash=f"solo-token-{i}", created_at=DAY)
            for i in range(3)
        ]
        session.add_all(solo)
        session.flush()
        # (condition, attack, norm, eps, human p, model p, rounds)
        plan = [
            ("adversarial", "pgd", "linf", 4 / 255, 0.9, 0.3, 14),
            ("adversarial", "pgd", "linf", 8 / 255, 0.7, 0.1, 14),
            ("adversarial", "pgd", "linf", 16 / 255, 0.5, 0.0, 10),
            ("adversarial", "fgsm", "linf", 8 / 255, 0.8, 0.4, 12),
            ("adversarial", "pgd-l2", "l2", 1.5, 0.8, 0.2, 6),
            ("clean", "pgd", "linf", 0.0, 0.95, 0.95, 8),
        ]
        for condition, attack, norm, eps, p_human, p_model, count in plan:
            for _ in range(count):
                n = ids.next()
                player = solo[n % 3]
                created = DAY + timedelta(minutes=n)
                true_label = rng.randrange(10)
                human_right = rng.random() < p_human
                model_right = rng.random() < p_model
                record = RoundRecord(
                    id=f"round{n:04d}",
                    player_id=player.id,
                    created_at=created,
                    pack="fashion",
                    opponent="fashion-cnn",
                    attack=attack,
                    attack_params={"steps": 20} if attack == "pgd" else {},
                    eps=eps,
                    norm=norm,
                    condition=condition,
                    **_round_columns(rng, n, true_label=true_label, model_right=model_right),
                )
                choice = true_label if human_right else (true_label + 1 + rng.randrange(9)) % 10
                session.add(record)
                session.flush()
                session.add(
                    AnswerRecord(
                        id=f"answer{n:04d}",
                        round_id=record.id,
                        player_id=player.id,
                        created_at=created + timedelta(seconds=5),
                        choice=choice,
                        correct=human_right,
                        model_correct=model_right,
                        points=1 if human_right else 0,
                        response_ms=5000,
                    )
                )
                counted += 1
        # A guess-the-machine round (where the columns exist): answered, but not a classification trial.
        if hasattr(RoundRecord, "task"):
            n = ids.next()
            session.add(
                RoundRecord(
                    id="guess",
                    player_id="solo1",
                    created_at=DAY,
                    pack="fashion",
                    opponent="fashion-cnn",
                    attack="pgd",
                    attack_params={},
                    eps=4 / 255,
                    task="guess_machine",
                    foil=1,
                    **_round_columns(rng, n, true_label=1, model_right=False),
                )
            )
            session.flush()
            session.add(
                AnswerRecord(
                    id="guess-answer",
                    round_id="guess",
                    player_id="solo1",
                    created_at=DAY + timedelta(seconds=5),
                    choice=1,
                    correct=False,
                    model_correct=False,
                    points=0,
                    response_ms=900,
                )
            )
        # One unanswered round: not a trial.
        n = ids.next()
        session.add(
            RoundRecord(
                id="unanswered",
                player_id="solo0",
                created_at=DAY,
                pack="fashion",
                opponent="fashion-cnn",
                attack="pgd",
                attack_params={},
                eps=4 / 255,
                **_round_columns(rng, n, true_label=1, model_right=False),
            )
        )
        # A together event a day later: three closed images and one still open.
        event_day = DAY + timedelta(days=1)
        session.add(
            EventRecord(
                id="event1",
                code=EVENT_CODE,
                name="Science night",
                host_token_hash="0" * 64,
                created_at=event_day,
                pack="fashion",
                settings={},
                status="running",
            )
        )
        people = [
            PlayerRecord(
                id=f"room{i}",
                event_id="event1",
                nickname=f"room {i}",
                nickname_key=f"room {i}",
                token_hash=f"room-token-{i}",
                created_at=event_day,
            )
            for i in range(4)
        ]
        session.add_all(people)
        session.flush()
        # Right (1) / wrong (0) per person and image; the open image's answers must stay hidden.
        grid = {1: [1, 1, 0, 1], 2: [0, 1, 0, 0], 3: [1, 0, 1, 1], 4: [1, 1, 1, 1]}
        model_right = {1: False, 2: False, 3: True, 4: False}
        now = datetime.now(UTC)
        for number, row in grid.items():
            is_open = number == 4
            opens = (now - timedelta(seconds=5)) if is_open else event_day + timedelta(minutes=number)
            closes = (now + timedelta(minutes=10)) if is_open else opens + timedelta(seconds=20)
            n = ids.next()
            columns = _round_columns(rng, n, true_label=number, model_right=model_right[number])
            shared = SharedRoundRecord(
                id=f"shared{number}",
                event_id="event1",
                number=number,
                opens_at=opens,
                closes_at=closes,
                pack="fashion",
                opponent="fashion-cnn",
                attack="pgd",
                attack_params={"steps": 20},
                eps=8 / 255,
                **columns,
            )
            session.add(shared)
            session.flush()
            for person, right in zip(people, row, strict=True):
                round_id = f"{shared.id}-{person.id}"
                session.add(
                    RoundRecord(
                        id=round_id,
                        player_id=person.id,
                        event_id="event1",
                        shared_round_id=shared.id,
                        created_at=opens,
                        pack="fashion",
                        opponent="fashion-cnn",
                        attack="pgd",
                        attack_params={"steps": 20},
                        eps=8 / 255,
                        **columns,
                    )
                )
                session.flush()
                choice = number if right else (number + 3) % 10
                session.add(
                    AnswerRecord(
                        id=f"a-{round_id}",
                        round_id=round_id,
                        player_id=person.id,
                        created_at=opens + timedelta(seconds=3),
                        choice=choice,
                        correct=bool(right),
                        model_correct=model_right[number],
                        points=1,
                        response_ms=3000,
                    )
                )
                if not is_open:
                    counted += 1
        session.commit()
    engine.dispose()
    return {"counted": counted, "together_closed": 3, "room": 4}

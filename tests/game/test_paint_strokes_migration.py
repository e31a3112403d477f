"""The paint_strokes migration moves each painting's strokes and answers out of its JSON columns into one row per
stroke, and the downgrade puts them back as they were; the declared tables match what the migrations make."""

from __future__ import annotations

import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from app.db import migrate
from app.db.session import sync_url
from app.db.tables import Base

BEFORE = "paint_strokes-1"  # relative, so that the test holds when the lead chains later migrations after it
STROKES = [
    {"tool": "brush", "points": [[1, 2], [2, 2]], "amount": 8},
    {"tool": "brush", "points": [[3, 4]], "amount": -16},
]
ANSWERS = [
    {"stroke": 1, "label": 9, "probabilities": [0.1] * 9 + [0.1]},
    {"stroke": 2, "label": 3, "probabilities": [0.0, 0.0, 0.0, 0.7] + [0.05] * 6},
]


def insert_old_paintings(url: str) -> None:
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO players (id, nickname, token_hash, score, streak, best_streak, level)"
                    " VALUES ('m' || :pad, 'migrant', :pad, 0, 0, 0, 0)"
                ),
                {"pad": "0" * 31},
            )
            for painting_id, strokes, answers in (("a" * 32, STROKES, ANSWERS), ("b" * 32, [], [])):
                connection.execute(
                    text(
                        "INSERT INTO paintings (id, player_id, pack, opponent, image_index, true_label, tool, budget,"
                        " status, revision, strokes, answers, model_label, model_probs, clean_probs, pixels, l2,"
                        " linf, points, clean_png, painted_png) VALUES (:id, 'm' || :pad, 'fashion', 'fashion-cnn',"
                        " 0, 9, 'brush', 32, 'painting', 3, :strokes, :answers, 3, '[]', '[]', 3, 0.1, 0.06, 0,"
                        " :png, :png)"
                    ),
                    {
                        "id": painting_id,
                        "pad": "0" * 31,
                        "strokes": json.dumps(strokes),
                        "answers": json.dumps(answers),
                        "png": b"png",
                    },
                )
    finally:
        engine.dispose()


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql))]
    finally:
        engine.dispose()


def as_python(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


def test_strokes_move_to_their_table_and_back(database_url: str) -> None:
    migrate.downgrade(database_url, BEFORE)
    try:
        insert_old_paintings(database_url)
        migrate.upgrade(database_url, "paint_strokes")
        counts = query(database_url, "SELECT id, stroke_count FROM paintings ORDER BY id")
        assert counts == [("a" * 32, 2), ("b" * 32, 0)]
        rows = query(database_url, "SELECT painting_id, number, stroke, label, probabilities FROM paint_strokes")
        moved = sorted((r[0], r[1], as_python(r[2]), r[3], as_python(r[4])) for r in rows)  # type: ignore[arg-type]
        assert moved == [
            ("a" * 32, 1, STROKES[0], 9, ANSWERS[0]["probabilities"]),
            ("a" * 32, 2, STROKES[1], 3, ANSWERS[1]["probabilities"]),
        ]
        migrate.downgrade(database_url, BEFORE)
        back = query(database_url, "SELECT id, strokes, answers FROM paintings ORDER BY id")
        assert [(r[0], as_python(r[1]), as_python(r[2])) for r in back] == [
            ("a" * 32, STROKES, ANSWERS),
            ("b" * 32, [], []),
        ]
    finally:
        migrate.upgrade(database_url)


def test_the_declared_paint_tables_match_the_migrations(database_url: str) -> None:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert [d for d in diff if "paint" in repr(d)] == []

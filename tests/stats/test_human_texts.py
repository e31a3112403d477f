"""The human-written texts dataset: keyset pages return every submitted text once, open and skipped rounds stay
out, and the tables the migration creates are the ones the code declares (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from app.db.session import Database, open_database, sync_url
from app.db.tables import Base, PlayerRecord, TextEditRecord, TextValidationRecord, new_id, utcnow
from app.stats import human_texts

pytestmark = pytest.mark.anyio


async def make_submitted(database: Database, n: int) -> list[str]:
    """``n`` won texts (all at the same second, so pages must break ties by id), one open and one skipped round."""
    moment = utcnow().replace(microsecond=0)
    async with database.sessionmaker() as session:
        player = PlayerRecord(id=new_id(), nickname="w", token_hash=new_id() + new_id())
        session.add(player)
        ids = []
        for i, status in enumerate(["won"] * n + ["open", "skipped"]):
            record = TextEditRecord(
                id=new_id(),
                player_id=player.id,
                status=status,
                submitted_at=moment if status == "won" else None,
                pack="definitions",
                opponent="definitions-tfidf",
                text_index=i,
                original="small elevation on the grinding surface of a tooth",
                true_label=6,
                budget=0.25,
                before_label=6,
                before_probs=[0.0] * 6 + [1.0, 0.0],
                n_words=9,
                edited="little elevation on the grinding surface of a tooth" if status == "won" else None,
                after_label=3 if status == "won" else None,
                after_probs=[0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.1, 0.0] if status == "won" else None,
                words_changed=1 if status == "won" else None,
                similarity=0.95 if status == "won" else None,
                similarity_floor=0.8 if status == "won" else None,
            )
            session.add(record)
            if status == "won":
                ids.append(record.id)
        await session.flush()
        reader = PlayerRecord(id=new_id(), nickname="r", token_hash=new_id() + new_id())
        session.add(reader)
        await session.flush()
        session.add(
            TextValidationRecord(
                id=new_id(), edit_id=ids[0], player_id=reader.id, choice=4, agrees=False, answered_at=moment
            )
        )
        session.add(TextValidationRecord(id=new_id(), edit_id=ids[-1], player_id=reader.id, open_player_id=reader.id))
        await session.commit()
    return ids


async def test_pages_return_every_submitted_text_once(database_url: str) -> None:
    database = open_database(database_url)
    try:
        made = await make_submitted(database, 3)
        paged = [row async for row in human_texts.iter_rows(database.sessionmaker, page_size=1)]
        whole = [row async for row in human_texts.iter_rows(database.sessionmaker)]
        assert [r["edit_id"] for r in paged] == [r["edit_id"] for r in whole]
        assert sorted(r["edit_id"] for r in whole) == sorted(made)
        first = next(r for r in whole if r["edit_id"] == made[0])
        assert first["validations"] == 1 and first["validations_agreeing"] == 0 and not first["validated"]
        assert first["validation_answers"][0]["answer"] == "person"
        last = next(r for r in whole if r["edit_id"] == made[-1])
        assert last["validations"] == 0  # an unanswered validation round is not a reading
        assert first["model_after"] == "made object" and first["model_after_confidence"] == 0.9
        chunks = [c async for c in human_texts.stream_human_texts(database.sessionmaker, "csv", page_size=2)]
        assert len("".join(chunks).strip().splitlines()) == 1 + 3
    finally:
        await database.dispose()


def test_the_migration_creates_the_declared_tables(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    mine = [d for d in diff if "text_edits" in repr(d) or "text_validations" in repr(d)]
    assert mine == []

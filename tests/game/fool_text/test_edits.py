"""The editor's rounds against a real database and the real text opponents: a definition the opponent gets right,
live checks that store nothing, a submission the server re-checks (budget, separators, floor, the answer), one
submission per round, one open round per player; then validation rounds by other players, one answer each, the
truth withheld until it is in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from app.db.session import open_database
from app.db.tables import PlayerRecord, TextEditRecord, TextValidationRecord
from app.errors import Conflict, Invalid, NotFound
from app.game import play
from app.game.fool_text import edits, rules, texts, validation
from tests.fool_text import TextEditingService

pytestmark = pytest.mark.anyio

TOOTH = 1  # test text 1: "small elevation on the grinding surface of a tooth", body part to TF-IDF
FOOLING = "little elevation on the grinding surface of a tooth"  # TF-IDF: made object
HOLDING = "small elevation on the grinding face of a tooth"  # within the rules, TF-IDF still says body part
BUDGET = 0.25


@pytest.fixture
async def service() -> AsyncIterator[TextEditingService]:
    text_service = TextEditingService()
    await text_service.start()
    yield text_service
    await text_service.stop()


@pytest.fixture(autouse=True)
def tooth_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(texts, "draw_indices", lambda n: [TOOTH])


async def test_a_round_offers_a_definition_the_opponent_gets_right(
    database_url: str, service: TextEditingService
) -> None:
    database = open_database(database_url)
    try:
        async with database.sessionmaker() as session:
            player, _, _ = await play.join(session, nickname="writer")
            record = await edits.start_edit(session, service, player=player, opponent=None, budget=BUDGET)
            pack = await texts.text_pack()
            assert record.original == pack.test.texts[TOOTH] and record.opponent == "definitions-tfidf"
            assert record.true_label == record.before_label == int(pack.test.labels[TOOTH])
            assert record.status == "open" and record.n_words == 9 and len(record.id) == 32
            assert service.classified[-1] == ("definitions-tfidf", (record.original,), player.id)
            # asking again hands back the open round; another opponent skips it
            again = await edits.start_edit(session, service, player=player, opponent="definitions-tfidf", budget=BUDGET)
            first_id = record.id
            assert again.id == first_id
            other = await edits.start_edit(
                session, service, player=player, opponent="definitions-minilm", budget=BUDGET
            )
            assert other.id != first_id and other.opponent == "definitions-minilm"
            await session.refresh(record)
            assert record.status == "skipped" and record.open_player_id is None
            with pytest.raises(Invalid, match="Unknown text opponent"):
                await edits.start_edit(session, service, player=player, opponent="fashion-cnn", budget=BUDGET)
    finally:
        await database.dispose()


async def test_checks_store_nothing_and_submit_rechecks_everything(
    database_url: str, service: TextEditingService
) -> None:
    database = open_database(database_url)
    try:
        async with database.sessionmaker() as session:
            player, _, _ = await play.join(session, nickname="writer")
            other, _, _ = await play.join(session, nickname="nosy")
            record = await edits.start_edit(session, service, player=player, opponent=None, budget=BUDGET)
            edit_id, original, player_id = record.id, record.original, player.id
            _, verdict = await edits.check_edit(session, service, player=player, edit_id=edit_id, edited=FOOLING)
            assert verdict.fooled and verdict.wins and verdict.measure.changed == 1 and verdict.measure.allowed == 2
            assert verdict.answer.label != record.true_label and verdict.similarity >= verdict.floor == 0.8
            assert service.measured[-1] == (original, FOOLING, player_id)
            await session.refresh(record)
            assert record.edited is None and record.status == "open"  # a check stores nothing

            # the server re-checks on submit: over the budget, punctuation added, unchanged, not yours
            for bad, problem in (
                ("little bump on the chewing surface of a tooth", "You changed 3 words"),
                ("little elevation on the grinding surface of a tooth!!!", "Only words may change"),
                (original, "Change at least one word"),
            ):
                with pytest.raises(Invalid, match=problem):
                    await edits.submit_edit(session, service, player=player, edit_id=record.id, edited=bad)
            await session.refresh(other)
            with pytest.raises(NotFound):
                await edits.submit_edit(session, service, player=other, edit_id=record.id, edited=FOOLING)
            await session.refresh(record)
            assert record.status == "open"

            done, verdict = await edits.submit_edit(session, service, player=player, edit_id=record.id, edited=FOOLING)
            assert done.status == "won" and done.open_player_id is None and done.edited == FOOLING
            assert done.after_label == verdict.answer.label != done.before_label
            assert done.after_probs == pytest.approx(list(verdict.answer.probabilities))
            assert done.words_changed == 1 and done.similarity == pytest.approx(verdict.similarity)
            assert done.similarity_floor == 0.8 and done.submitted_at is not None
            with pytest.raises(Conflict):  # one submission per round
                await edits.submit_edit(session, service, player=player, edit_id=record.id, edited=FOOLING)
            with pytest.raises(Conflict):
                await edits.check_edit(session, service, player=player, edit_id=record.id, edited=FOOLING)

            lost = await edits.start_edit(session, service, player=player, opponent=None, budget=BUDGET)
            closed, verdict = await edits.submit_edit(session, service, player=player, edit_id=lost.id, edited=HOLDING)
            assert not verdict.fooled and closed.status == "lost" and closed.after_label == closed.true_label
    finally:
        await database.dispose()


async def test_an_edit_below_the_similarity_floor_is_refused(database_url: str, service: TextEditingService) -> None:
    database = open_database(database_url)
    try:
        async with database.sessionmaker() as session:
            player, _, _ = await play.join(session, nickname="writer")
            record = await edits.start_edit(session, service, player=player, opponent=None, budget=1.0)
            far = "large building on the grinding surface of a planet"
            _, verdict = await edits.check_edit(session, service, player=player, edit_id=record.id, edited=far)
            assert verdict.measure.within_budget and verdict.similarity < verdict.floor
            assert not verdict.wins and any("too different" in p for p in verdict.problems)
            with pytest.raises(Invalid, match="too different"):
                await edits.submit_edit(session, service, player=player, edit_id=record.id, edited=far)
    finally:
        await database.dispose()


async def test_validation_rounds_hide_the_truth_until_their_one_answer(
    database_url: str, service: TextEditingService
) -> None:
    database = open_database(database_url)

    async def as_player(player_id: str, work: Any) -> Any:
        """One request: its own session, the player read afresh, as the routes have it."""
        async with database.sessionmaker() as session:
            player = await session.get(PlayerRecord, player_id)
            return await work(session, player)

    try:
        async with database.sessionmaker() as session:
            writer_id = (await play.join(session, nickname="writer"))[0].id
            reader_id = (await play.join(session, nickname="reader"))[0].id
        with pytest.raises(NotFound, match="No one else"):
            await as_player(reader_id, lambda s, p: validation.start_validation(s, player=p))
        record = await as_player(
            writer_id, lambda s, p: edits.start_edit(s, service, player=p, opponent=None, budget=BUDGET)
        )
        await as_player(
            writer_id, lambda s, p: edits.submit_edit(s, service, player=p, edit_id=record.id, edited=FOOLING)
        )
        with pytest.raises(NotFound):  # never one's own text
            await as_player(writer_id, lambda s, p: validation.start_validation(s, player=p))

        shown = await as_player(reader_id, lambda s, p: validation.start_validation(s, player=p))
        assert shown.text == FOOLING and not shown.answered and shown.edit is None  # truth withheld
        again = await as_player(reader_id, lambda s, p: validation.start_validation(s, player=p))
        assert again.record.id == shown.record.id and again.edit is None  # one open validation round per player
        vid = shown.record.id
        with pytest.raises(Invalid):
            await as_player(
                reader_id, lambda s, p: validation.answer_validation(s, player=p, validation_id=vid, choice=99)
            )
        with pytest.raises(NotFound):
            await as_player(
                writer_id, lambda s, p: validation.answer_validation(s, player=p, validation_id=vid, choice=0)
            )

        answered = await as_player(
            reader_id,
            lambda s, p: validation.answer_validation(s, player=p, validation_id=vid, choice=record.true_label),
        )
        assert answered.answered and answered.edit is not None and answered.edit.original == record.original
        assert answered.record.agrees is True and answered.record.answered_at is not None
        with pytest.raises(Conflict):  # one answer per validation round
            await as_player(
                reader_id, lambda s, p: validation.answer_validation(s, player=p, validation_id=vid, choice=0)
            )
        with pytest.raises(NotFound):  # each text once per reader: nothing else to read
            await as_player(reader_id, lambda s, p: validation.start_validation(s, player=p))
        async with database.sessionmaker() as session:
            assert await validation.readings_of(session, record.id) == (1, 1)
            assert await session.scalar(select(func.count()).select_from(TextValidationRecord)) == 1
            assert await session.scalar(select(func.count()).select_from(TextEditRecord)) == 1
    finally:
        await database.dispose()


def test_a_text_is_validated_when_most_readers_see_the_original_category() -> None:
    assert not validation.is_validated(0, 0)
    assert validation.is_validated(1, 1) and not validation.is_validated(1, 0)
    assert validation.is_validated(3, 2) and not validation.is_validated(4, 2)


def test_the_tooth_edit_is_within_the_default_rules() -> None:
    measure = rules.measure_edit("small elevation on the grinding surface of a tooth", FOOLING, BUDGET)
    assert measure.within_budget and measure.separators_kept

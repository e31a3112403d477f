"""Text rounds' rules against a real database (SQLite and PostgreSQL), with a deterministic text source: a round is
stored with its original and shown text, answered once and scored, the text staircase runs on the share of words
apart from the image staircase, conditions read across from the image game's mixes, and the reveal (original with
the changed words marked) exists only where the reveal rule allows, also during a together countdown."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.db.session import open_database
from app.db.tables import AnswerRecord
from app.errors import Conflict, Invalid
from app.game import disclosure, events, players, text, text_play
from app.game.text import TEXT_CLASS_NAMES, TEXT_LEVELS
from app.ml.packs.text.definitions import CATEGORIES
from app.ml.service.text_contracts import TEXT_ATTACKS
from tests.game.text_source import ORIGINAL, KnownTexts

pytestmark = pytest.mark.anyio


async def test_a_text_round_is_stored_answered_once_and_scored(database_url: str) -> None:
    database = open_database(database_url)
    source = KnownTexts()
    try:
        async with database.sessionmaker() as session:
            player, _ = await players.create_player(session, nickname="reader")
            record = await text.start_text_round(session, player=player, source=source)
            await session.commit()
            assert (record.kind, record.pack, record.norm, record.opponent) == (
                "text", "definitions", "words", "definitions-tfidf",
            )  # fmt: skip
            assert record.eps == TEXT_LEVELS[0] and source.jobs[0].budget == TEXT_LEVELS[0]
            assert record.original_text == ORIGINAL and record.shown_text != ORIGINAL and record.changed_words == [1]
            assert record.linf == pytest.approx(1 / 7) and record.clean_png == b"" and record.similarity == 0.93
            assert source.jobs[0].client == player.id and source.jobs[0].attack == "textfooler"
            truth = TEXT_CLASS_NAMES[record.true_label]
            with pytest.raises(Invalid):
                await text.answer_text_round(session, player=player, record=record, choice="cat", source=source)
            answer = await text.answer_text_round(session, player=player, record=record, choice=truth, source=source)
            await session.commit()
            assert answer.correct and not answer.model_correct and answer.points == 3
            assert (player.score, player.streak, player.level) == (3, 1, 0), "the image staircase did not move"
            with pytest.raises(Conflict):
                await text.answer_text_round(session, player=player, record=record, choice=truth, source=source)
            # The text staircase: one step up after a right answer, one down after a wrong one.
            harder = await text.start_text_round(session, player=player, source=source)
            assert harder.level == 1 and harder.eps == TEXT_LEVELS[1]
            wrong = TEXT_CLASS_NAMES[(harder.true_label + 3) % 8]
            miss = await text.answer_text_round(session, player=player, record=harder, choice=wrong, source=source)
            await session.commit()
            assert not miss.correct and miss.points == 0 and player.streak == 0
            assert await text.text_level(session, player.id) == 0
        async with database.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(AnswerRecord)) == 2
    finally:
        await database.dispose()


async def test_the_reveal_marks_the_changed_words_and_stays_escaped_data() -> None:
    pieces = text_play.pieces("a big <b>feline</b> of open country", {1, 3})
    words = [piece.text for piece in pieces if piece.changed]
    assert words == ["big", "feline"]
    assert "".join(piece.text for piece in pieces) == "a big <b>feline</b> of open country"


def test_conditions_read_across_from_the_image_game() -> None:
    assert text.text_plan("deepwordbug", {"noise": 1.0}) == ("deepwordbug", "random_swap")
    assert text.text_plan("deepwordbug", {"flipped": 1.0}) == ("deepwordbug", "random_swap")
    assert text.text_plan("deepwordbug", {"clean": 1.0}) == ("deepwordbug", "clean")
    assert text.text_plan("deepwordbug", {"transfer": 1.0}) == ("transfer", "adversarial")
    assert text.text_plan("textfooler", None) == ("textfooler", "adversarial")
    with pytest.raises(Invalid):
        text.check_attack("pgd")


def test_the_web_tier_knows_the_text_opponents_and_categories_the_model_service_has() -> None:
    from app.ml.text.attacks import textfooler  # noqa: F401  (the attacks TEXT_ATTACKS names exist)
    from app.ml.text.opponents import TEXT_OPPONENTS

    assert TEXT_CLASS_NAMES == tuple(name for _, name in CATEGORIES)
    assert set(TEXT_ATTACKS) == {"textfooler", "deepwordbug", "transfer"}
    assert {"definitions-tfidf", "definitions-minilm"} == set(TEXT_OPPONENTS)


async def test_a_together_text_hides_its_truth_until_the_countdown_ends(database_url: str) -> None:
    database = open_database(database_url)
    source = KnownTexts()
    try:
        async with database.sessionmaker() as session:
            settings = events.validate_settings(
                {
                    "name": "Words",
                    "phases": [{"opponent": "definitions-tfidf", "attack": "deepwordbug"}],
                    "style": "together",
                    "round_seconds": 60,
                    "conditions": "adversarial=1,noise=1",
                },
                catalog=events.Catalog(
                    opponents={"definitions-tfidf": "definitions"}, attacks=TEXT_ATTACKS, playable={}
                ),
            )[2]
            event, _ = await events.create_event(session, name="Words", pack="definitions", settings=settings)
            events.start(event)
            await session.commit()
            player, _ = await events.join(session, event=event, nickname="ann")
            shared = await events.open_shared_round(session, event=event, source=source)  # type: ignore[arg-type]
            await session.commit()
            assert shared.kind == "text" and shared.eps == text.EVENT_LEVELS[0] and shared.attack == "deepwordbug"
            copy = await events.next_round(session, player=player, event=event, source=source)  # type: ignore[arg-type]
            await session.commit()
            assert copy.kind == "text" and copy.shown_text == shared.shown_text and copy.shared_round_id == shared.id
            record, answer, _ = await events.answer_round(
                session,
                player=player,
                round_id=copy.id,
                choice=TEXT_CLASS_NAMES[copy.true_label],
                source=source,  # type: ignore[arg-type]
            )
            await session.commit()
            # Answered, but the room's countdown runs: no reveal, no points shown, not counted anywhere.
            view = await text_play.text_view(session, source, record=record, answer=answer)  # type: ignore[arg-type]
            assert view.reveal is None and view.truth_hidden_until is not None
            assert await disclosure.shown_score(session, player) == 0 and player.score == answer.points > 0
            with pytest.raises(Conflict):
                await text_play.revealed_text(session, source, player=player, round_id=record.id)  # type: ignore[arg-type]
            # Once the countdown and grace are over, the reveal shows the original with the changed word marked.
            shared.closes_at = shared.opens_at.replace(year=2000)
            await session.commit()
            shown = await text_play.revealed_text(session, source, player=player, round_id=record.id)  # type: ignore[arg-type]
            assert shown.reveal is not None and [p.text for p in shown.reveal.shown if p.changed] == ["big"]
            assert [p.text for p in shown.reveal.original if p.changed] == ["large"]
            assert shown.reveal.model_confidence == pytest.approx(0.86) and shown.reveal.correct
    finally:
        await database.dispose()

"""When a together image reveals: one moment, its countdown plus the grace for late answers, that the screens'
and phones' wake-ups, the open/closed state and the reveal rule all share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.db.tables import SharedRoundRecord
from app.game import events
from tests.game.events.records import event_with


def shared_closing_at(closes_at: datetime) -> SharedRoundRecord:
    return SharedRoundRecord(id="s" * 32, event_id="e" * 32, number=1, closes_at=closes_at)


def test_an_image_reveals_one_grace_period_after_its_countdown() -> None:
    closes_at = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    assert events.reveals_at(closes_at) == closes_at + timedelta(seconds=events.ANSWER_GRACE_S)
    assert events.reveals_at(closes_at.replace(tzinfo=None)) == events.reveals_at(closes_at), "SQLite's naive UTC"
    assert events.reveals_at(None) is None


def test_in_the_grace_second_the_screens_still_have_a_moment_to_wake_up_for() -> None:
    """The bug this pins: the streams woke at closes_at, dropped it once past, and the image stayed open for the
    grace second with nothing left to wake them, so the big screen never showed the reveal."""
    now = datetime.now(UTC)
    shared = shared_closing_at(now - timedelta(seconds=events.ANSWER_GRACE_S / 2))
    assert events.shared_is_open(shared, now), "still taking late answers"
    moments = events.unattended_changes(event_with(style="together"), shared, shared_open=True, running=False)
    assert moments == [events.reveals_at(shared.closes_at)] and moments[0] > now
    assert not events.shared_is_open(shared, moments[0]), "closed, and revealed, at that moment"

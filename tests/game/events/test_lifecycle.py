"""An event's life cycle and its time limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app import messages
from app.errors import Conflict
from app.game import events
from tests.game.events.records import event_with

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def test_life_cycle_start_pause_resume_end() -> None:
    event = event_with(time_limit_s=600)
    assert events.status_of(event, T0) == "lobby"
    events.start(event, T0)
    assert event.ends_at == T0 + timedelta(seconds=600)
    assert events.seconds_left(event, T0 + timedelta(seconds=100)) == 500
    with pytest.raises(Conflict):
        events.start(event, T0)
    events.pause(event, T0 + timedelta(seconds=100))
    assert event.status == "paused" and event.remaining_s == 500 and event.ends_at is None
    with pytest.raises(Conflict):
        events.pause(event, T0 + timedelta(seconds=200))
    events.start(event, T0 + timedelta(seconds=1000))  # resume: the clock carries on from where it stopped
    assert event.ends_at == T0 + timedelta(seconds=1500)
    assert events.status_of(event, T0 + timedelta(seconds=1499)) == "running"
    assert events.status_of(event, T0 + timedelta(seconds=1500)) == "ended"
    with pytest.raises(Conflict) as late:
        events.pause(event, T0 + timedelta(seconds=1600))
    assert late.value.message == messages.EVENT_ENDED
    events.end(event, T0 + timedelta(seconds=2000))
    assert event.status == "ended" and event.ended_at == T0 + timedelta(seconds=1500), "ended when time ran out"
    events.end(event, T0 + timedelta(seconds=3000))
    assert event.ended_at == T0 + timedelta(seconds=1500)


def test_phases_advance_to_the_last_one_only() -> None:
    event = event_with(
        phases=[{"opponent": "fashion-cnn", "attack": "pgd"}, {"opponent": "fashion-cnn", "attack": "fgsm"}]
    )
    assert events.current_phase(event).attack == "pgd"
    assert events.next_phase(event).attack == "fgsm"
    with pytest.raises(Conflict) as last:
        events.next_phase(event)
    assert last.value.message == messages.EVENT_LAST_PHASE

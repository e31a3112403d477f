"""Event rules without a server: codes, settings, the life cycle and the time limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app import messages
from app.db.tables import EventRecord
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.game import events

CATALOG = events.Catalog(opponents={"fashion-cnn": "fashion", "digits-cnn": "mnist"}, attacks=("fgsm", "pgd"))
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def settings(**raw: object) -> events.EventSettings:
    body: dict[str, object] = {"name": "W", "phases": [{"opponent": "fashion-cnn", "attack": "pgd"}], **raw}
    return events.validate_settings(body, catalog=CATALOG)[2]


def event_with(**raw: object) -> EventRecord:
    return EventRecord(
        id="e" * 32,
        code="ABCDEF",
        name="W",
        host_token_hash=events.hash_secret("secret"),
        pack="fashion",
        settings=settings(**raw).to_json(),
        status="lobby",
        locked=False,
        phase=0,
        shared_rounds=0,
    )


def test_join_codes_avoid_ambiguous_characters() -> None:
    codes = {events.new_join_code() for _ in range(2000)}
    assert len(codes) > 1990
    for code in codes:
        assert len(code) == 6 and not set(code) & set("0O1IL") and set(code) <= set(events.CODE_ALPHABET)


def test_typed_codes_are_normalised_or_unknown() -> None:
    assert events.normalise_code(" abc-def ") == "ABCDEF"
    assert events.normalise_code("abc def") == "ABCDEF"
    for bad in ("", "ABCDE", "ABCDEFG", "ABCDE0", "ABCDEI", "ABC?EF"):
        with pytest.raises(NotFound) as caught:
            events.normalise_code(bad)
        assert caught.value.message == messages.EVENT_NOT_FOUND


def test_host_token_is_checked_against_its_hash() -> None:
    event = event_with()
    assert event.host_token_hash != "secret"
    events.check_host(event, "secret")
    with pytest.raises(Forbidden) as missing:
        events.check_host(event, None)
    assert missing.value.message == messages.HOST_TOKEN_REQUIRED
    with pytest.raises(Forbidden) as wrong:
        events.check_host(event, "secreT")
    assert wrong.value.message == messages.HOST_TOKEN_INVALID


def test_eps_levels_are_whole_grey_levels() -> None:
    assert [round(e * 255) for e in settings(eps=8 / 255).eps_levels()] == [8]
    assert settings(eps=8 / 255).fixed_eps
    assert [round(e * 255) for e in settings(eps_min=4 / 255, eps_max=12 / 255).eps_levels()] == [4, 6, 8, 10, 12]
    assert [round(e * 255) for e in settings(eps_min=2 / 255, eps_max=4 / 255).eps_levels()] == [2, 3, 4]
    assert len(settings(eps_min=1 / 255, eps_max=76 / 255).eps_levels()) == 5


def test_settings_are_checked_against_the_catalog() -> None:
    with pytest.raises(Invalid, match="digits-cnn"):
        settings(phases=[{"opponent": "fashion-cnn", "attack": "pgd"}, {"opponent": "digits-cnn", "attack": "pgd"}])
    with pytest.raises(Invalid) as unknown:
        settings(phases=[{"opponent": "fashion-cnn", "attack": "square"}])
    assert "fgsm, pgd" in unknown.value.message
    with pytest.raises(Invalid):
        settings(phases=[{"opponent": "fashion-cnn", "attack": "pgd"}] * 6)
    with pytest.raises(Invalid):
        settings(time_limit_s=10)
    assert settings(rounds="7").rounds == 7 and settings(rounds="").rounds is None
    loaded = events.EventSettings.from_json(settings(style="together", rounds=3).to_json())
    assert loaded.style == "together" and loaded.rounds == 3 and loaded.phases[0].attack == "pgd"


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

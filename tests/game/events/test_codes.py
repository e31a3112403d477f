"""Join codes and the host's secret."""

from __future__ import annotations

import pytest

from app import messages
from app.errors import Forbidden, NotFound
from app.game import events
from tests.game.events.records import event_with


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

"""What every workshop page needs: the host's token in the signed session cookie, absolute links, the class names
of the phase being played."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated

from fastapi import Form, Request

from app import messages
from app.db.tables import EventRecord
from app.errors import ArenaError, Forbidden
from app.game import events, text
from app.ml.service.contracts import ModelService

FormText = Annotated[str, Form(max_length=200)]


def hosting(request: Request) -> dict[str, str]:
    value = request.session.get("hosting")
    return dict(value) if isinstance(value, dict) else {}


def remember_host(request: Request, code: str, token: str) -> None:
    tokens = hosting(request)
    tokens[code] = token
    request.session["hosting"] = dict(list(tokens.items())[-10:])  # the cookie stays small


def require_host(request: Request, event: EventRecord) -> str:
    """The host's browser holds the token in its signed session cookie (put there by /host or the secret link)."""
    token = hosting(request).get(event.code)
    if not token:
        raise Forbidden(messages.HOST_LINK_REQUIRED)
    events.check_host(event, token)
    return str(token)


def class_names(service: ModelService, event: EventRecord) -> tuple[str, ...]:
    if text.is_text_pack(event.pack):  # a text event (issue #18)
        return text.TEXT_CLASS_NAMES
    return service.opponent_info(events.current_phase(event).opponent).class_names


def absolute(request: Request, name: str, **params: str) -> str:
    return str(request.url_for(name, **params))


def iso_moment(moment: datetime | None) -> str | None:
    """A stored moment for the page's countdown script (UTC, ISO 8601)."""
    aware = events.aware(moment)
    return aware.isoformat() if aware is not None else None


async def attempt(request: Request, action: Awaitable[object]) -> bool:
    """Run a host's or a phone's action; True when it was done. One the event's state refuses (409: not running,
    time up, ...) becomes a flash message on the page drawn next instead of an error page."""
    try:
        await action
    except ArenaError as error:
        if error.status_code != 409:
            raise
        request.session["flash"] = error.message
        return False
    return True

"""Domain errors. Services raise these; one handler in app/main.py turns them into HTML or JSON replies.

Each error carries an HTTP-ish status so that the web layer need not know the rules, and a message constant
from :mod:`app.messages` so that tests compare against the very text users read.
"""

from __future__ import annotations


class ArenaError(Exception):
    status_code: int = 400

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class NotFound(ArenaError):
    status_code = 404


class Forbidden(ArenaError):
    status_code = 403


class Unauthorized(ArenaError):
    status_code = 401


class Conflict(ArenaError):
    status_code = 409


class Invalid(ArenaError):
    status_code = 422


class ServiceBusy(ArenaError):
    """The model service's queue is full: the client should retry shortly."""

    status_code = 503
    retry_after_s = 2


class DatabaseBusy(ArenaError):
    """No database connection came free in time: nothing was written, the client should retry shortly."""

    status_code = 503
    retry_after_s = 2


class ServiceUnavailable(ArenaError):
    status_code = 503
    retry_after_s = 5

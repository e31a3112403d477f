"""How `arena` logs: every line with its time and level, as text for a terminal or as one JSON object per line for
a log collector (--log-format json). The standard library's logging only; uvicorn's loggers go through the same
handler, at the same level."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that say at INFO what only a debugging reader wants: Alembic names each of its plugins as it loads them.
CHATTY_BELOW_DEBUG = ("alembic.runtime.plugins",)


class JsonLines(logging.Formatter):
    """One JSON object a line: time (ISO 8601, UTC), level, logger, message, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class ArenaHandler(logging.StreamHandler):
    """The handler `arena` puts on the root logger; its own class, so configuring again replaces it and leaves any
    other handler (a test runner's, say) alone. Like the standard library's last-resort handler it writes to
    whatever sys.stderr is when a record comes, not the stream of the moment it was made, so a replaced or
    captured stderr never receives a write after it is closed."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)  # StreamHandler's own would fix the stream now

    @property
    def stream(self) -> TextIO:  # type: ignore[override]  # read-only on purpose: always the current sys.stderr
        return sys.stderr


def configure_logging(level: LogLevel = "info", log_format: LogFormat = "text") -> None:
    """Send every logger's records at ``level`` and above to standard error, in ``log_format`` (text or json)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, ArenaHandler)]:
        root.removeHandler(handler)
    handler = ArenaHandler()
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in CHATTY_BELOW_DEBUG:
        logging.getLogger(name).setLevel(logging.NOTSET if level == "debug" else logging.WARNING)


def current_level_name() -> str:
    """The root logger's level as uvicorn spells it (info, debug, ...), so the server logs at the level asked for."""
    return logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()

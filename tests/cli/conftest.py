"""Every `arena` invocation configures the root logger (app/cli/logs.py); each test here gives it back as it was,
so tests in other folders see the logging they expect."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from app.cli.logs import CHATTY_BELOW_DEBUG


@pytest.fixture(autouse=True)
def root_logger_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    chatty = {name: logging.getLogger(name).level for name in CHATTY_BELOW_DEBUG}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, chatty_level in chatty.items():
        logging.getLogger(name).setLevel(chatty_level)

"""Logging: every line has its time and level; --log-level and ARENA_LOG_LEVEL pick the least level; --log-format
json (or ARENA_LOG_FORMAT=json) writes one JSON object a line; uvicorn logs through the same handler."""

from __future__ import annotations

import json
import logging
import re

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.cli.logs import ArenaHandler, JsonLines, configure_logging, current_level_name
from tests.cli.output import unboxed

TIMESTAMPED = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: ")


def test_text_lines_carry_time_level_and_logger(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "text")
    logging.getLogger("arena.test").info("round %d made", 7)
    logging.getLogger("arena.test").debug("not shown at info")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert TIMESTAMPED.match(lines[0]) and lines[0].endswith(" INFO arena.test: round 7 made")


def test_json_lines_are_one_object_each_with_time_level_logger_message(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("debug", "json")
    logging.getLogger("arena.test").debug('a "quoted"\nsecond line')
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("arena.test").exception("it failed")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first.keys() == {"time", "level", "logger", "message"}
    assert first["level"] == "DEBUG" and first["logger"] == "arena.test"
    assert first["message"] == 'a "quoted"\nsecond line'
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00", first["time"])
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


def test_configuring_again_replaces_arenas_handler_and_keeps_others() -> None:
    root = logging.getLogger()
    other = logging.NullHandler()
    root.addHandler(other)
    configure_logging("info")
    configure_logging("warning")
    assert sum(isinstance(h, ArenaHandler) for h in root.handlers) == 1
    assert other in root.handlers
    assert root.level == logging.WARNING and current_level_name() == "warning"


def test_uvicorn_follows_the_level() -> None:
    """serve hands uvicorn current_level_name() and no log_config, so its loggers propagate to arena's handler."""
    for level in ("debug", "info", "warning", "error", "critical"):
        configure_logging(level)  # type: ignore[arg-type]  # the loop's str is one of LogLevel's values
        assert current_level_name() == level


def test_alembic_plugin_announcements_only_at_debug() -> None:
    configure_logging("info")
    assert not logging.getLogger("alembic.runtime.plugins").isEnabledFor(logging.INFO)
    configure_logging("debug")
    assert logging.getLogger("alembic.runtime.plugins").isEnabledFor(logging.DEBUG)


def test_the_options_and_their_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["--log-level", "WARNING", "db", "--help"]).exit_code == 0
    assert logging.getLogger().level == logging.WARNING
    monkeypatch.setenv("ARENA_LOG_LEVEL", "debug")
    monkeypatch.setenv("ARENA_LOG_FORMAT", "json")
    assert runner.invoke(app, ["db", "--help"]).exit_code == 0
    assert logging.getLogger().level == logging.DEBUG
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, ArenaHandler)]
    assert isinstance(handler.formatter, JsonLines)


def test_a_wrong_level_is_a_usage_error_naming_the_choices() -> None:
    result = CliRunner().invoke(app, ["--log-level", "loud", "db", "--help"])
    assert result.exit_code == 2
    assert "'debug', 'info', 'warning', 'error', 'critical'" in unboxed(result.output)


def test_serve_hands_uvicorn_the_level_and_arenas_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hard-coded level, and no log_config: uvicorn's records propagate to arena's handler (times, JSON)."""
    import uvicorn

    from app.config import get_settings

    started: dict[str, object] = {}

    def run(server: uvicorn.Server) -> None:
        config = server.config
        started.update(log_level=config.log_level, log_config=config.log_config, port=config.port)

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.setenv("ARENA_MODEL_SERVICE_URL", "http://127.0.0.1:1")  # no checkpoint check, no torch here
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["--log-level", "warning", "serve", "--no-migrate", "--port", "8123"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert started["log_level"] == "warning" and started["log_config"] is None and started["port"] == 8123

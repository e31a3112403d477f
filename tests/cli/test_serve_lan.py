"""`arena serve --lan`: every interface, the address and QR code phones open, and never the built-in secret key
off loopback. The server itself is not started: the server's run is replaced, so nothing listens off loopback."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from app.cli import app as arena
from app.config import DEFAULT_SECRET, get_settings
from app.web import room

SERVE = importlib.import_module("app.cli.serve")  # the package's `serve` attribute is the command itself


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """What the uvicorn server was given; the key file in tmp_path, the LAN address a fixed private one."""
    seen: dict[str, Any] = {}

    def run(server: uvicorn.Server) -> None:
        seen.update(app=server.config.app, host=server.config.host, port=server.config.port, config=server.config)

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.setattr(SERVE, "check_opponent_ready", lambda: None)
    monkeypatch.setattr(room, "SECRET_KEY_FILE", tmp_path / "var" / "secret_key")
    monkeypatch.setattr(room, "lan_address", lambda: "192.168.1.20")
    monkeypatch.setenv("ARENA_DATABASE_URL", f"sqlite:///{tmp_path / 'arena.db'}")
    monkeypatch.delenv("ARENA_SECRET_KEY", raising=False)
    monkeypatch.delenv("ARENA_PUBLIC_URL", raising=False)
    get_settings.cache_clear()
    yield seen
    get_settings.cache_clear()


def secret_of(app: Any) -> str:
    return str(app.state.settings.secret_key.get_secret_value())


def test_lan_binds_every_interface_prints_the_address_and_a_qr_code(started: dict[str, Any]) -> None:
    result = CliRunner().invoke(arena, ["serve", "--lan", "--no-migrate", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert started["host"] == "0.0.0.0" and started["port"] == 8123
    assert "Phones open http://192.168.1.20:8123/join" in result.output
    assert "█" in result.output or "▀" in result.output, "a QR code drawn in the terminal"
    key = secret_of(started["app"])
    assert key != DEFAULT_SECRET and key == room.SECRET_KEY_FILE.read_text().strip()
    again = CliRunner().invoke(arena, ["serve", "--lan", "--no-migrate", "--port", "8123"])
    assert again.exit_code == 0 and secret_of(started["app"]) == key, "the same key after a restart"


def test_a_chosen_secret_key_and_public_url_win(started: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARENA_SECRET_KEY", "a-long-random-value-chosen-by-the-presenter")
    monkeypatch.setenv("ARENA_PUBLIC_URL", "https://arena.example.org")
    get_settings.cache_clear()
    result = CliRunner().invoke(arena, ["serve", "--lan", "--no-migrate"])
    assert result.exit_code == 0, result.output
    assert "Phones open https://arena.example.org/join" in result.output
    assert secret_of(started["app"]) == "a-long-random-value-chosen-by-the-presenter"
    assert not room.SECRET_KEY_FILE.exists()


def test_loopback_keeps_the_built_in_key_and_prints_no_address(started: dict[str, Any]) -> None:
    result = CliRunner().invoke(arena, ["serve", "--no-migrate"])
    assert result.exit_code == 0, result.output
    assert started["host"] == "127.0.0.1" and secret_of(started["app"]) == DEFAULT_SECRET
    assert "Phones open" not in result.output


def test_any_address_off_loopback_gets_a_random_key(started: dict[str, Any]) -> None:
    result = CliRunner().invoke(arena, ["serve", "--no-migrate", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert secret_of(started["app"]) != DEFAULT_SECRET


def test_the_server_has_a_graceful_shutdown_timeout(started: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARENA_SHUTDOWN_TIMEOUT_S", "7")
    get_settings.cache_clear()
    assert CliRunner().invoke(arena, ["serve", "--no-migrate"]).exit_code == 0
    assert started["config"].timeout_graceful_shutdown == 7

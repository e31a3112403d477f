"""Letting a room in (app/web/room.py): the LAN address, loopback checks, the kept secret key, and the join link
the host console, the screen, the QR code and the API give (ARENA_PUBLIC_URL, or the address the browser used)."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.web import room
from tests.helpers import new_event
from tests.web.events.builders import enter_host_key


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000/join", True),
        ("http://127.3.4.5/join", True),
        ("http://localhost:8000/join", True),
        ("http://[::1]:8000/join", True),
        ("http://192.168.1.20:8000/join", False),
        ("https://arena.example.org/join", False),
        ("http://testserver/join", False),
    ],
)
def test_loopback_urls_are_told_apart(url: str, loopback: bool) -> None:
    assert room.is_loopback_url(url) is loopback


def test_the_lan_address_is_a_reachable_ipv4_address_or_none() -> None:
    address = room.lan_address()
    assert address is None or not ipaddress.ip_address(address).is_loopback


def test_the_public_base_prefers_the_public_url_then_the_lan_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(room, "lan_address", lambda: "192.168.1.20")
    assert room.public_base("https://arena.example.org/", "0.0.0.0", 8000) == "https://arena.example.org"
    assert room.public_base("", "0.0.0.0", 8000) == "http://192.168.1.20:8000"
    assert room.public_base("", "10.0.0.5", 9000) == "http://10.0.0.5:9000"
    monkeypatch.setattr(room, "lan_address", lambda: None)
    assert room.public_base("", "0.0.0.0", 8000) == "http://127.0.0.1:8000", "no network: only this machine"


def test_the_secret_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret_key"
    key = room.kept_secret_key(path)
    assert len(key) >= 48 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert room.kept_secret_key(path) == key, "kept across restarts"


def test_the_console_warns_when_its_join_link_is_loopback(client: TestClient) -> None:
    event = new_event(client)
    assert enter_host_key(client, event["code"], event["host_token"], base="http://127.0.0.1").status_code == 303
    console = client.get(f"http://127.0.0.1/events/{event['code']}/host")
    assert console.status_code == 200 and 'id="loopback-warning"' in console.text
    assert "arena serve --lan" in console.text
    assert enter_host_key(client, event["code"], event["host_token"]).status_code == 303
    elsewhere = client.get(f"/events/{event['code']}/host")
    assert elsewhere.status_code == 200 and 'id="loopback-warning"' not in elsewhere.text


def test_the_public_url_sets_every_join_link(client: TestClient) -> None:
    settings = client.app.state.settings
    client.app.state.settings = settings.model_copy(update={"public_url": "https://arena.example.org/"})
    try:
        event = new_event(client)
        code = event["code"]
        assert event["join_url"] == f"https://arena.example.org/join/{code}"
        assert enter_host_key(client, code, event["host_token"], base="http://127.0.0.1").status_code == 303
        console = client.get(f"http://127.0.0.1/events/{code}/host")
        assert f'href="https://arena.example.org/join/{code}"' in console.text
        assert 'id="loopback-warning"' not in console.text, "the proxy's address is what phones open"
        screen = client.get(f"/events/{code}/screen")
        assert "https://arena.example.org/join" in screen.text
        assert client.get(f"/events/{code}/qr.svg").status_code == 200
    finally:
        client.app.state.settings = settings

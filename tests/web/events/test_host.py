"""The host form and the host console: what the server can run, mistakes explained, the host's secret."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from app import messages
from tests.helpers import csrf_from
from tests.web.events.builders import enter_host_key, host_event_in_html, swap_cookies

HTML = {"Accept": "text/html"}
HOST_KEY = re.compile(r'id="host-key" value="([^"]+)"')


def test_host_form_lists_what_the_server_can_run_and_explains_mistakes(client: TestClient) -> None:
    form = client.get("/host")
    assert '<option value="fashion-cnn"' in form.text
    assert '<option value="pgd"' in form.text and '<option value="fgsm"' in form.text
    bad = client.post(
        "/host",
        data={
            "name": "x",
            "opponent": "fashion-cnn",
            "attack": "pgd",
            "eps_min": "20",
            "eps_max": "4",
            "csrf_token": csrf_from(form.text),
        },
    )
    assert bad.status_code == 422 and messages.EVENT_EPS_INVALID in html.unescape(bad.text)
    assert 'value="x"' in bad.text, "the form keeps what the host typed"
    refused = client.post("/host", data={"name": "x", "csrf_token": "forged"}, headers=HTML)
    assert refused.status_code == 403


def test_host_console_needs_the_host_cookie_or_the_host_key(client: TestClient) -> None:
    code = host_event_in_html(client)
    console = client.get(f"/events/{code}/host")
    assert console.status_code == 200
    assert code in console.text and f"/events/{code}/qr.svg" in console.text and f"/join/{code}" in console.text
    assert "key=" not in console.text, "a key in an address lands in access logs and browser history"
    key = html.unescape(HOST_KEY.search(console.text).group(1))  # type: ignore[union-attr]
    host_jar = swap_cookies(client, [])
    stranger = client.get(f"/events/{code}/host", headers=HTML)
    assert stranger.status_code == 403 and messages.HOST_LINK_REQUIRED in html.unescape(stranger.text)
    assert 'method="post"' in stranger.text and 'name="key"' in stranger.text, "it asks for the host key"
    page = client.get("/")
    forged = client.post(f"/events/{code}/host/start", data={"csrf_token": csrf_from(page.text)}, headers=HTML)
    assert forged.status_code == 403, "a stranger with a valid form token still is not the host"
    in_address = client.get(f"/events/{code}/host?key={key}", headers=HTML)
    assert in_address.status_code == 403, "a key in the address is not taken: it would be logged"
    wrong = enter_host_key(client, code, "guess")
    assert wrong.status_code == 403 and messages.HOST_TOKEN_INVALID in html.unescape(wrong.text)
    opened = enter_host_key(client, code, key)
    assert opened.status_code == 303 and opened.headers["location"].endswith(f"/events/{code}/host")
    assert client.get(f"/events/{code}/host").status_code == 200, "the host key works on a second device"
    swap_cookies(client, host_jar)


def test_leaving_forgets_the_events_this_browser_hosts(client: TestClient) -> None:
    code = host_event_in_html(client)
    console = client.get(f"/events/{code}/host")
    left = client.post("/leave", data={"csrf_token": csrf_from(console.text)}, follow_redirects=False)
    assert left.status_code == 303
    assert client.get(f"/events/{code}/host", headers=HTML).status_code == 403, "the host key left with the player"

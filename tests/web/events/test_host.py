"""The host form and the host console: what the server can run, mistakes explained, the host's secret."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from app import messages
from tests.helpers import csrf_from
from tests.web.events.builders import host_event_in_html, swap_cookies

HTML = {"Accept": "text/html"}
HOST_LINK = re.compile(r'value="([^"]+\?key=[^"]+)"')


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


def test_host_console_needs_the_host_cookie_or_the_secret_link(client: TestClient) -> None:
    code = host_event_in_html(client)
    console = client.get(f"/events/{code}/host")
    assert console.status_code == 200
    assert code in console.text and f"/events/{code}/qr.svg" in console.text and f"/join/{code}" in console.text
    host_link = html.unescape(HOST_LINK.search(console.text).group(1))  # type: ignore[union-attr]
    host_jar = swap_cookies(client, [])
    stranger = client.get(f"/events/{code}/host", headers=HTML)
    assert stranger.status_code == 403 and messages.HOST_LINK_REQUIRED in html.unescape(stranger.text)
    page = client.get("/")
    forged = client.post(f"/events/{code}/host/start", data={"csrf_token": csrf_from(page.text)}, headers=HTML)
    assert forged.status_code == 403, "a stranger with a valid form token still is not the host"
    wrong = client.get(f"/events/{code}/host?key=guess", headers=HTML)
    assert wrong.status_code == 403 and messages.HOST_TOKEN_INVALID in html.unescape(wrong.text)
    opened = client.get(host_link.replace("http://testserver", ""), follow_redirects=False)
    assert opened.status_code == 303 and "key=" not in opened.headers["location"]
    assert client.get(f"/events/{code}/host").status_code == 200, "the secret link works on a second device"
    swap_cookies(client, host_jar)

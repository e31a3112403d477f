"""A phone's stage and the event's status stream in a real browser: a status message never draws over a round the
player is requesting, and a status the stage already shows costs no request at all.

The race is made deterministic by holding the round request in Playwright's router while a status message is
delivered to the page the way the SSE extension delivers it (an `sse:status` event on the refresh element)."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.test_workshop_in_chromium import join_by_code


def deliver_status(page: Page, key: str) -> None:
    page.evaluate(
        "key => htmx.trigger(document.getElementById('stage-refresh'), 'sse:status', {data: key})",
        key,
    )


def wait_for_count(page: Page, seen: list[str], count: int, timeout_ms: int = 15_000) -> None:
    """Let the page run until ``seen`` holds ``count`` requests (or the time is up); then the caller asserts."""
    waited = 0
    while len(seen) < count and waited < timeout_ms:
        page.wait_for_timeout(100)
        waited += 100


def started_event(base: str, page: Page, nickname: str) -> str:
    event = httpx.post(f"{base}/api/v1/events", json={"name": "Stage races", "eps": 8 / 255}).json()
    join_by_code(page, base, event["code"], nickname)
    headers = {"Authorization": f"Bearer {event['host_token']}"}
    assert httpx.post(f"{base}/api/v1/events/{event['code']}/start", headers=headers).status_code == 200
    expect(page.locator("#new-round")).to_be_visible(timeout=30_000)
    return str(event["code"])


def test_a_status_message_waits_for_the_round_in_flight(live_server: str, browser: Browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        code = started_event(live_server, page, "Racer")
        stage_requests: list[str] = []
        page.on("request", lambda r: stage_requests.append(r.url) if r.url.endswith("/play/stage") else None)
        held: list[Route] = []
        page.route(f"**/events/{code}/play/rounds", lambda route: held.append(route))
        page.locator("#new-round").click()
        page.wait_for_function("() => document.querySelector('#stage .htmx-request, #stage form.htmx-request')")
        assert held, "the round request is held by the router"
        deliver_status(page, "running:0:False:0:False:changed")  # a key the stage does not show
        page.wait_for_timeout(300)
        assert stage_requests == [], "the refresh waits while the round request is in flight"
        held[0].continue_()
        expect(page.get_by_alt_text("The image to classify")).to_be_visible(timeout=30_000)
        # The queued refresh ran after the round arrived, and it drew the same open round, not a Start button.
        wait_for_count(page, stage_requests, 1)
        page.wait_for_timeout(300)  # (not "networkidle": the status stream stays open)
        assert len(stage_requests) == 1
        expect(page.get_by_alt_text("The image to classify")).to_be_visible()
        expect(page.locator("#new-round")).to_have_count(0)
    finally:
        context.close()


def test_a_status_the_stage_already_shows_costs_no_request(live_server: str, browser: Browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        started_event(live_server, page, "Idle")
        stage_requests: list[str] = []
        page.on("request", lambda r: stage_requests.append(r.url) if r.url.endswith("/play/stage") else None)
        shown_key = page.locator("#stage").get_attribute("data-status-key")
        assert shown_key and shown_key.startswith("running:")
        deliver_status(page, shown_key)
        page.wait_for_timeout(300)
        assert stage_requests == []
        deliver_status(page, "paused:0:False:0:False")
        wait_for_count(page, stage_requests, 1)
        assert len(stage_requests) == 1, "a status the stage does not show is fetched"
    finally:
        context.close()

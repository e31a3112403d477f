"""Workshop mode in a real browser, three contexts: the host (console and big screen) and two players on phones.

The big screen must update through server-sent events, without reloading, when the players answer; the phones must
notice the host starting the event by themselves; the report must show the players' answers."""

from __future__ import annotations

import csv
import io
import re

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def join_by_code(page: Page, base: str, code: str, nickname: str) -> None:
    page.goto(base + "/join")
    page.get_by_label("Event code").fill(code.lower())
    page.get_by_label("Nickname").fill(nickname)
    page.get_by_role("button", name="Join").click()
    expect(page).to_have_url(re.compile(rf"/events/{code}/play$"))
    expect(page.locator("#stage")).to_contain_text("Waiting for the host")


def answer_one_round(page: Page, choice: str) -> str:
    page.locator("#new-round").click()
    image = page.get_by_alt_text("The image to classify")
    expect(image).to_be_visible(timeout=30_000)  # the attack runs on 2 shared CPU cores
    loaded = "img => img.complete ? img.naturalWidth : new Promise(done => img.onload = () => done(img.naturalWidth))"
    assert image.evaluate(loaded) == 28
    page.get_by_role("button", name=re.compile(re.escape(choice))).click()
    expect(page.locator(".answers")).to_contain_text("Truth", timeout=15_000)
    return page.locator("dd.truth").inner_text()


def test_host_two_players_and_a_live_screen(live_server: str, browser: Browser) -> None:
    host = browser.new_context(viewport={"width": 1280, "height": 900})
    phones = [
        browser.new_context(viewport={"width": 390, "height": 800}, is_mobile=True, has_touch=True) for _ in range(2)
    ]
    try:
        console = host.new_page()
        console.goto(live_server + "/host")
        console.get_by_label("Event name").fill("Browser workshop")
        console.get_by_label("From").fill("6")
        console.get_by_label("To (the same value for a fixed budget)").fill("6")
        console.get_by_label("Rounds (per player, or shared images in all)").fill("3")
        console.get_by_role("button", name="Create the event").click()
        expect(console).to_have_url(re.compile(r"/events/[A-Z0-9]{6}/host$"))
        code = console.locator("#join-code").inner_text()
        assert re.fullmatch(r"[A-HJKMNP-Z2-9]{6}", code)
        qr = console.get_by_alt_text(re.compile("QR code"))
        expect(qr).to_be_visible()
        assert qr.evaluate("img => img.complete && img.naturalWidth > 0"), "the QR code renders"

        screen = host.new_page()
        screen.goto(f"{live_server}/events/{code}/screen")
        expect(screen.locator("#screen-code")).to_have_text(code)
        screen.evaluate("window.__noReload = 'still the same page'")

        ada, bob = (context.new_page() for context in phones)
        join_by_code(ada, live_server, code, "Ada")
        join_by_code(bob, live_server, code, "Bob")
        expect(screen.locator("#screen-status")).to_contain_text("2 players")  # joins reach the screen too

        console.get_by_role("button", name="Start").click()
        expect(console.locator("#event-status")).to_have_text("running")
        for phone in (ada, bob):  # the phones hear the start through their own stream, no reload
            expect(phone.locator("#new-round")).to_be_visible()

        truths = [answer_one_round(ada, "Coat"), answer_one_round(bob, "Sneaker")]
        assert all(truth in FASHION for truth in truths)
        tally = screen.locator("#screen-tally .versus")
        expect(tally).to_have_attribute("data-answers", "2", timeout=5000)
        expect(screen.locator("#screen-board")).to_contain_text("Ada")
        expect(screen.locator("#screen-board")).to_contain_text("Bob")
        expect(screen.locator("#screen-eps")).to_contain_text("6/255")
        assert screen.evaluate("window.__noReload") == "still the same page", "the screen updated without a reload"
        ARTIFACTS.mkdir(exist_ok=True)
        screen.screenshot(path=str(ARTIFACTS / "workshop-screen.png"))

        answer_one_round(ada, "Bag")
        expect(tally).to_have_attribute("data-answers", "3", timeout=5000)

        console.on("dialog", lambda dialog: dialog.accept())  # hx-confirm asks before ending
        console.get_by_role("button", name="End the event").click()
        expect(console.locator("#event-status")).to_have_text("ended")
        expect(ada.locator("#stage")).to_contain_text("The event has ended")
        expect(screen.locator("#screen-status")).to_contain_text("Finished")

        console.goto(f"{live_server}/events/{code}/report")
        expect(console.locator("#participation")).to_contain_text("2 players gave 3 answers")
        expect(console.locator("#report-board")).to_contain_text("Ada")
        expect(console.locator("#report-board")).to_contain_text("Bob")
        exported = console.request.get(f"{live_server}/api/v1/events/{code}/answers.csv")
        rows = list(csv.DictReader(io.StringIO(exported.text())))
        assert sorted((r["nickname"], r["human_answer"]) for r in rows) == [
            ("Ada", "Bag"),
            ("Ada", "Coat"),
            ("Bob", "Sneaker"),
        ]
        assert {r["event"] for r in rows} == {code} and {r["eps"] for r in rows} == {str(round(6 / 255, 6))}
        chart = console.request.get(f"{live_server}/events/{code}/charts/accuracy-by-eps.png")
        assert chart.ok and chart.body().startswith(b"\x89PNG")
    finally:
        for context in (host, *phones):
            context.close()


def test_a_phone_without_javascript_can_join_and_play(live_server: str, browser: Browser) -> None:
    import httpx

    event = httpx.post(f"{live_server}/api/v1/events", json={"name": "No-JS room", "eps": 8 / 255}).json()
    code = event["code"]
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        join_by_code(page, live_server, code, "Plain")
        headers = {"Authorization": f"Bearer {event['host_token']}"}
        assert httpx.post(f"{live_server}/api/v1/events/{code}/start", headers=headers).status_code == 200
        page.reload()  # without JavaScript there is no live stream: the player reloads
        page.get_by_role("button", name="Start").click()
        expect(page.get_by_alt_text("The image to classify")).to_be_visible(timeout=30_000)
        page.get_by_role("button", name=re.compile("Trouser")).click()
        expect(page.locator(".answers")).to_contain_text("Trouser")
        expect(page.locator(".answers")).to_contain_text("Truth")
        page.goto(f"{live_server}/events/{code}/report")
        expect(page.locator("#participation")).to_contain_text("1 player gave 1 answer")
    finally:
        context.close()

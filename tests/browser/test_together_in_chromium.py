"""A together round finishes by itself: the host shows an image, both phones answer, and then nobody touches
anything. The big screen must show the room's vote and the truth, and the phones their reveal, within 1.5 s of
the moment the image reveals (its countdown plus the grace for late answers), measured in the page."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from app.game.events import ANSWER_GRACE_S
from tests.browser.test_workshop_in_chromium import join_by_code

REVEAL_WITHIN_S = 1.5

# Notes in the page when the countdown is drawn (its data-countdown-to: when the image closes, UTC) and when the
# verdict appears; the server and the browser share this machine's clock.
WATCH_THE_SCREEN = """() => {
  window.__closesAt = null; window.__verdictAt = null;
  const look = () => {
    const countdown = document.querySelector('#screen-together [data-countdown-to]');
    if (countdown && window.__closesAt === null) {
      window.__closesAt = Date.parse(countdown.getAttribute('data-countdown-to'));
    }
    if (window.__verdictAt === null && document.querySelector('#screen-together .verdict-line')) {
      window.__verdictAt = Date.now();
    }
  };
  new MutationObserver(look).observe(document.body, {subtree: true, childList: true, attributes: true});
  look();
}"""


def test_the_screen_and_the_phones_reveal_a_together_image_by_themselves(live_server: str, browser: Browser) -> None:
    host = browser.new_context(viewport={"width": 1280, "height": 900})
    phones = [
        browser.new_context(viewport={"width": 390, "height": 800}, is_mobile=True, has_touch=True) for _ in range(2)
    ]
    try:
        console = host.new_page()
        console.goto(live_server + "/host")
        console.get_by_label("Event name").fill("Together room")
        console.get_by_label("From").fill("6")
        console.get_by_label("To (the same value for a fixed budget)").fill("6")
        console.get_by_label("Everyone on the same image, with a countdown").check()
        console.get_by_label("Countdown per shared image (seconds)").fill("5")
        console.get_by_label("Rounds (per player, or shared images in all)").fill("2")
        console.get_by_role("button", name="Create the event").click()
        expect(console).to_have_url(re.compile(r"/events/[A-Z0-9]{6}/host$"))
        code = console.locator("#join-code").inner_text()

        screen = host.new_page()
        screen.goto(f"{live_server}/events/{code}/screen")
        expect(screen.locator("#screen-code")).to_have_text(code)
        screen.evaluate(WATCH_THE_SCREEN)

        ada, bob = (context.new_page() for context in phones)
        join_by_code(ada, live_server, code, "Ada")
        join_by_code(bob, live_server, code, "Bob")
        console.get_by_role("button", name="Start").click()
        expect(console.locator("#event-status")).to_have_text("running")
        console.get_by_role("button", name="Show the first image").click()

        for phone, choice in ((ada, "Coat"), (bob, "Sneaker")):
            expect(phone.get_by_alt_text("The image to classify")).to_be_visible(timeout=30_000)
            phone.get_by_role("button", name=re.compile(re.escape(choice))).click()
            expect(phone.locator("#stage")).to_contain_text(f"Answer locked in: {choice}")
            expect(phone.locator("#stage")).not_to_contain_text("Machine said")

        # Nobody does anything more.
        verdict = screen.locator("#screen-together .verdict-line")
        expect(verdict).to_contain_text("Truth", timeout=15_000)
        expect(screen.locator("#screen-together table.votes")).to_contain_text("Coat")
        expect(screen.locator("#screen-together table.votes")).to_contain_text("Sneaker")
        for phone in (ada, bob):
            expect(phone.locator(".answers")).to_contain_text("Machine said", timeout=5_000)
            expect(phone.locator(".answers")).to_contain_text("Truth")

        closes_at, verdict_at = screen.evaluate("[window.__closesAt, window.__verdictAt]")
        assert closes_at is not None and verdict_at is not None
        delay_s = (verdict_at - (closes_at + ANSWER_GRACE_S * 1000)) / 1000
        print(f"the screen revealed {delay_s:.3f} s after closes_at + grace")
        assert 0 <= delay_s <= REVEAL_WITHIN_S, f"revealed {delay_s:.3f} s after closes_at + grace"
    finally:
        for context in (host, *phones):
            context.close()

"""Text rounds in a real browser (issue #18): a player reads a definition, answers, and sees the reveal (the
original with the changed words marked, both answers, the machine's confidence); a host runs a together event on
the text pack and the big screen shows the room's text, then the original with the truth."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from app.game.text import TEXT_CLASS_NAMES
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_play_in_chromium import join
from tests.browser.test_workshop_in_chromium import join_by_code


def test_a_text_round_with_its_reveal(live_server: str, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    try:
        join(page, live_server, "Reader")
        page.get_by_role("link", name="Text", exact=True).click()
        expect(page).to_have_url(re.compile(r"/play/text$"))
        page.locator("#choose-text-attack").select_option("deepwordbug")
        page.get_by_role("button", name="Start a text round").click()
        for number in range(2):
            shown = page.locator("#shown-text")
            expect(shown).to_be_visible(timeout=60_000)  # the first round loads the text pack and MiniLM
            text = shown.inner_text()
            assert "___" in text or len(text.split()) >= 4
            choices = page.locator("#choices button[name=choice]")
            expect(choices).to_have_count(8)
            html = page.content()
            assert "Machine said" not in html and "original-text" not in html and "<del" not in html
            choices.nth(number).click()
            expect(page.locator(".reveal")).to_be_visible()
            expect(page.locator(".answers")).to_contain_text("Truth")
            expect(page.locator(".answers")).to_contain_text(TEXT_CLASS_NAMES[number])
            expect(page.locator(".answers")).to_contain_text("% sure")
            assert page.locator("dd.truth").inner_text() in TEXT_CLASS_NAMES
            expect(page.locator("#original-text")).to_be_visible()
            marked_original = page.locator("#original-text del.changed").count()
            assert page.locator("#shown-text-revealed ins.changed").count() == marked_original
            expect(page.locator(".confidence meter")).to_have_count(3)
            if number == 0:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "text-reveal.png"))
                page.get_by_role("button", name="Next text").click()
    finally:
        context.close()


def test_a_text_event_with_the_big_screen(live_server: str, browser: Browser) -> None:
    host = browser.new_context(viewport={"width": 1280, "height": 900})
    phone_context = browser.new_context(viewport={"width": 390, "height": 800}, is_mobile=True, has_touch=True)
    try:
        console = host.new_page()
        console.goto(live_server + "/host")
        console.get_by_label("Event name").fill("Word room")
        console.locator("#pack").select_option("definitions")
        console.locator("#opponent").select_option("definitions-tfidf")
        console.locator("#attack").select_option("textfooler")
        console.get_by_label("Everyone on the same image, with a countdown").check()
        console.get_by_label("Countdown per shared image (seconds)").fill("8")
        console.get_by_label("Rounds (per player, or shared images in all)").fill("2")
        console.get_by_role("button", name="Create the event").click()
        expect(console).to_have_url(re.compile(r"/events/[A-Z0-9]{6}/host$"))
        code = console.locator("#join-code").inner_text()

        screen = host.new_page()
        screen.goto(f"{live_server}/events/{code}/screen")
        expect(screen.locator("#screen-code")).to_have_text(code)
        phone = phone_context.new_page()
        join_by_code(phone, live_server, code, "Ada")
        console.get_by_role("button", name="Start").click()
        expect(console.locator("#event-status")).to_have_text("running")
        console.get_by_role("button", name="Show the first image").click()

        expect(screen.locator("#screen-shown-text")).to_be_visible(timeout=60_000)
        expect(phone.locator("#shown-text")).to_be_visible(timeout=30_000)
        assert phone.locator("#shown-text").inner_text() == screen.locator("#screen-shown-text").inner_text()
        phone.get_by_role("button", name=re.compile("animal")).click()
        expect(phone.locator("#stage")).to_contain_text("Answer locked in: animal")
        expect(phone.locator("#stage")).not_to_contain_text("Machine said")
        expect(screen.locator("#screen-original-text")).to_have_count(0)

        # Nobody touches anything: the countdown ends and the screen and phone reveal by themselves.
        expect(screen.locator("#screen-together .verdict-line")).to_contain_text("Truth", timeout=20_000)
        expect(screen.locator("#screen-original-text")).to_be_visible()
        expect(phone.locator(".answers")).to_contain_text("Machine said", timeout=10_000)
        expect(phone.locator("#original-text")).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        screen.screenshot(path=str(ARTIFACTS / "text-screen.png"))
    finally:
        host.close()
        phone_context.close()

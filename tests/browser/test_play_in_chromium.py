"""A newcomer's game in a real browser: join, three rounds by clicking, each reveal, the leaderboard."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def join(page: Page, base: str, nickname: str) -> None:
    page.goto(base + "/")
    page.get_by_label("Nickname").fill(nickname)
    page.get_by_role("button", name="Play").click()
    expect(page).to_have_url(re.compile(r"/play$"))


def assert_question_hides_the_answer(page: Page) -> None:
    html = page.content()
    assert "original.png" not in html and "perturbation.png" not in html
    assert "Machine said" not in html and "Truth" not in html


def test_three_rounds_by_clicking_then_the_leaderboard(live_server: str, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    try:
        join(page, live_server, "Clicky")
        page.get_by_role("button", name="Start a round").click()
        for number in range(3):
            choices = page.locator("#choices button[name=choice]")
            expect(choices).to_have_count(10)
            image = page.get_by_alt_text("The image to classify")
            expect(image).to_be_visible()
            # wait for the PNG itself (the stage can be swapped in before the browser has fetched it); -1: it failed
            loaded = (
                "img => img.complete && img.naturalWidth ? img.naturalWidth : new Promise(done => {"
                " img.onload = () => done(img.naturalWidth); img.onerror = () => done(-1); })"
            )
            assert image.evaluate(loaded) == 28
            assert_question_hides_the_answer(page)
            if number == 0:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "round.png"))
            choices.nth(number + 2).click()
            expect(page.locator(".reveal")).to_be_visible()
            expect(page.locator(".answers")).to_contain_text("Truth")
            truth = page.locator("dd.truth").inner_text()
            assert truth in FASHION
            expect(page.locator(".answers")).to_contain_text(FASHION[number + 2])
            expect(page.get_by_alt_text("Original image")).to_be_visible()
            expect(page.get_by_alt_text("The perturbation, amplified")).to_be_visible()
            expect(page.locator(".confidence meter")).to_have_count(3)
            if number == 0:
                page.screenshot(path=str(ARTIFACTS / "reveal.png"))
            if number < 2:
                page.get_by_role("button", name="Next round").click()
        page.get_by_role("link", name="Leaderboard").click()
        row = page.locator("table.board tr", has_text="Clicky")
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(3)).to_have_text("3")
        expect(page.locator("#tally")).to_contain_text("humans right")
    finally:
        context.close()


def test_keyboard_answers_and_phone_width(live_server: str, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        join(page, live_server, "Phone")
        page.get_by_role("button", name="Start a round").click()
        expect(page.locator("#choices")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, "no sideways scrolling at 360 px"
        page.keyboard.press("7")
        expect(page.locator(".answers")).to_contain_text("Sneaker")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "phone-reveal.png"), full_page=True)
    finally:
        context.close()


def test_the_game_works_without_javascript(live_server: str, browser: Browser) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        join(page, live_server, "NoScript")
        page.get_by_role("button", name="Start a round").click()
        expect(page).to_have_url(re.compile(r"/play/rounds/[A-Za-z0-9_-]{20,}$"))
        assert_question_hides_the_answer(page)
        page.get_by_role("button", name=re.compile("Coat")).click()
        expect(page.locator(".answers")).to_contain_text("Coat")
        expect(page.locator(".answers")).to_contain_text("Truth")
    finally:
        context.close()


DEFENDED = {
    "fashion-robust": False,
    "fashion-distilled": False,
    "fashion-squeezed": True,
    "fashion-jpeg": True,
    "fashion-magnet": True,
    "fashion-certified": True,
    "fashion-defgan": True,
}


def test_every_defended_opponent_plays_and_the_reveal_says_what_its_defense_did(
    live_server: str, browser: Browser
) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    try:
        join(page, live_server, "Roster")
        for opponent, reports in DEFENDED.items():
            page.goto(live_server + "/play")
            page.locator("#choose-opponent").select_option(opponent)
            page.get_by_role("button", name="Start a round").click()
            choices = page.locator("#choices button[name=choice]")
            expect(choices).to_have_count(10)
            assert_question_hides_the_answer(page)
            assert "What the defense did" not in page.content()
            choices.nth(0).click()
            expect(page.locator(".reveal")).to_be_visible()
            expect(page.locator(".attack-note")).to_contain_text(opponent)
            verdict = page.locator(".defense-verdict")
            if reports:
                expect(verdict).to_contain_text("What the defense did:")
            else:  # training-time defenses change the net, not the image: there is nothing more to say than the answer
                expect(verdict).to_have_count(0)
    finally:
        context.close()

"""The policy lab and pick the moments in a real browser (issue 19): the lab's two replays drawn on canvases from
the recorded states, the budget slider fetching a new attacked episode, and a pick-the-moments game played with the
keyboard on the timeline and Space during the slow-motion replay, to its result; then the same game without
JavaScript, steps typed into the form."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS

DRAWN = (
    "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
    " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"
)


def join(page: Page, base: str, nickname: str) -> None:
    page.goto(base + "/")
    page.get_by_label("Nickname").fill(nickname)
    page.get_by_role("button", name="Play").click()
    expect(page).to_have_url(re.compile(r"/play$"))


def drawn_step(page: Page, canvas: str) -> int:
    return int(page.locator(canvas).get_attribute("data-drawn-step") or -1)


def test_the_lab_replays_both_episodes_and_the_slider_fetches_a_new_one(live_server: str, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 1000})
    page = context.new_page()
    try:
        page.goto(live_server + "/lab/policy?attack=timed&budget=0.1&seed=1000&attacked_steps=10")
        for canvas in ("#replay-clean", "#replay-attacked"):
            page.wait_for_function(f"() => Number(document.querySelector('{canvas}').dataset.drawnStep) > 20")
            assert page.locator(canvas).evaluate(DRAWN) > 500, f"{canvas} is drawn"
        expect(page.locator("#lab-words")).to_contain_text("strongly prefers")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "policy-lab.png"))
        before = page.locator("#attacked-steps").inner_text()
        with page.expect_response(re.compile(r"/api/v1/policy/episodes\?.*budget=0.25")) as reply:
            page.locator("#lab-budget").fill("0.25")
        body = reply.value.json()
        expect(page.locator("#lab-budget-value")).to_have_text("0.25")
        expect(page.locator("#attacked-steps")).to_have_text(str(body["attacked"]["return"]))
        expect(page.locator("#attacked-count")).to_have_text(str(len(body["attacked"]["attacked_steps"])))
        assert body["attacked"]["budget"] == 0.25 and before.isdigit()
        expect(page).to_have_url(re.compile(r"budget=0.25"))
        with page.expect_response(re.compile(r"attack=fgsm")) as fgsm:
            page.locator("#lab-attack").select_option("fgsm")
        expect(page.locator("#lab-words")).to_contain_text("Huang et al. 2017")
        expect(page.locator("#attacked-count")).to_have_text(str(fgsm.value.json()["attacked"]["return"]))
    finally:
        context.close()


def test_a_pick_the_moments_game_to_its_result(live_server: str, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 1000})
    page = context.new_page()
    try:
        join(page, live_server, "Picker")
        page.goto(live_server + "/lab/policy/play")
        page.get_by_label("Budget").select_option("0.2")
        page.get_by_label("K, steps you may attack").select_option("3")
        page.get_by_role("button", name="Start a round").click()
        expect(page).to_have_url(re.compile(r"/lab/policy/rounds/[0-9a-f]{32}$"))
        timeline = page.locator("#timeline")
        timeline.focus()
        for _ in range(8):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        page.keyboard.press("Shift+ArrowRight")
        page.keyboard.press("Enter")
        expect(page.locator("#policy-steps")).to_have_value("8, 18")
        expect(timeline).to_have_attribute("aria-valuenow", "18")
        page.get_by_role("button", name="Replay in slow motion").click()
        page.evaluate("document.activeElement.blur()")
        page.wait_for_function("() => Number(document.querySelector('#replay-clean').dataset.drawnStep) > 25")
        page.keyboard.press(" ")
        value = page.locator("#policy-steps").input_value()
        picks = [int(step) for step in value.split(", ")]
        assert len(picks) == 3 and {8, 18} <= set(picks) and max(picks) > 25, value
        page.keyboard.press(" ")  # a fourth moment is one too many: K is 3
        expect(page.locator("#policy-steps")).to_have_value(value)
        page.get_by_role("button", name="Attack these steps").click()
        outcome = page.locator("#policy-outcome")
        expect(outcome).to_be_visible()
        assert outcome.get_attribute("data-outcome") in ("win", "tie", "loss")
        assert int(page.locator("#player-steps").inner_text()) > 0
        assert int(page.locator("#heuristic-steps").inner_text()) > 0
        page.wait_for_function("() => Number(document.querySelector('#replay-player').dataset.drawnStep) > 5")
        assert page.locator("#replay-heuristic").evaluate(DRAWN) > 500
        page.screenshot(path=str(ARTIFACTS / "policy-result.png"))
        page.goto(live_server + "/leaderboard")
        expect(page.locator("#policy-board-table")).to_contain_text("Picker")
    finally:
        context.close()


def test_the_game_without_javascript(live_server: str, browser: Browser) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        join(page, live_server, "NoScript")
        page.goto(live_server + "/lab/policy/play")
        page.get_by_role("button", name="Start a round").click()
        page.locator("#policy-steps").fill("4, 12, 30")
        page.get_by_role("button", name="Attack these steps").click()
        expect(page.locator("#policy-outcome")).to_be_visible()
        expect(page.locator("#policy-result")).to_contain_text("attacked at 4, 12, 30")
    finally:
        context.close()

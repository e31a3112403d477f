"""Fool the machine yourself in Chromium, against the real model service: a writer on a 360 px phone types an edit,
sees the machine's live answer change, submits and wins; then a second player, by keyboard alone, reads the text in
a validation round and still sees a body part in it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS, free_port, serving
from tests.fool_text import FOOLING

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("fool-server") / "server.log"
    env = dict(os.environ)
    env.update(
        ARENA_DATABASE_URL=f"sqlite:///{tmp_path_factory.mktemp('fool-db') / 'arena.db'}",
        ARENA_SECRET_KEY="browser-test-secret",
        ARENA_DEVICE="cpu",
        ARENA_ENVIRONMENT="test",
        ARENA_TORCH_THREADS="1",
        PYTHONPATH=str(ROOT),
    )
    subprocess.run([sys.executable, "-m", "app.cli", "db", "upgrade"], env=env, check=True, cwd=ROOT)
    argv = [sys.executable, "-m", "tests.browser.fool_text_server", str(port)]
    with serving(argv, env, log_path, f"http://127.0.0.1:{port}", cwd=ROOT) as base:
        yield base


def join(page: Page, base: str, nickname: str) -> None:
    page.goto(base + "/")
    page.get_by_label("Nickname").fill(nickname)
    page.get_by_role("button", name="Play").click()


def test_type_an_edit_win_then_a_second_player_validates_it(fool_server: str, browser: Browser) -> None:
    phone = browser.new_context(viewport={"width": 360, "height": 760})
    writer = phone.new_page()
    try:
        join(writer, fool_server, "Writer")
        writer.goto(fool_server + "/fool/text")
        writer.get_by_role("button", name="Give me a definition").click()
        expect(writer.locator("#original")).to_have_text("small elevation on the grinding surface of a tooth")
        expect(writer.locator("#before-answer")).to_have_text("body part")
        editor = writer.get_by_label("Your edit")
        editor.fill("")
        editor.press_sequentially(FOOLING, delay=5)  # typed: htmx asks the server once the typing pauses
        expect(writer.locator("#fool-status")).to_contain_text("Fooled!", timeout=20_000)
        expect(writer.locator("#fool-status")).to_contain_text("made object")
        expect(writer.locator("#words-changed")).to_contain_text("1 of 9")
        expect(writer.locator("#similarity")).to_contain_text("the floor is 0.80")
        expect(writer.locator(".top3 li")).to_have_count(3)
        overflow = writer.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"the editor is {overflow} px wider than a 360 px phone"
        ARTIFACTS.mkdir(exist_ok=True)
        writer.screenshot(path=str(ARTIFACTS / "fool_text_phone.png"), full_page=True)
        writer.get_by_role("button", name="Submit").click()
        expect(writer.locator("#fool-result")).to_contain_text("You fooled the machine!")
        expect(writer.locator("#after-answer")).to_contain_text("made object")
    finally:
        phone.close()

    desk = browser.new_context(viewport={"width": 1000, "height": 800})
    reader = desk.new_page()
    try:
        join(reader, fool_server, "Reader")
        reader.goto(fool_server + "/fool/text/validate")
        start = reader.get_by_role("button", name="Show me one")
        start.focus()
        reader.keyboard.press("Enter")  # keyboard alone from here on
        expect(reader.locator("#validate-text")).to_have_text(FOOLING)
        assert "small elevation on the grinding" not in reader.content()  # the original is withheld
        reader.keyboard.press("7")  # the 7th category: body part (app/static js: digits answer)
        expect(reader.locator("#validate-reveal")).to_contain_text("Yes: it defines a body part.")
        expect(reader.locator("#validate-reveal")).to_contain_text("small elevation on the grinding surface")
    finally:
        desk.close()

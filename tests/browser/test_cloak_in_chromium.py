"""A newcomer cloaks their own photo in a real browser, from the upload to the survival table, and downloads it:
with htmx (progress over SSE) and with JavaScript off (plain form post). Needs the optional imagenet extra, which
`make test` installs. The first cloak of a fresh checkout builds the search index (about a minute on 2 cores;
cached under var/search-index afterwards), hence the long wait for the first result."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, expect

from tests.browser.conftest import ARTIFACTS
from tests.imagenet import EXTRA_MISSING, HAS_EXTRA, sample

pytestmark = pytest.mark.skipif(not HAS_EXTRA, reason=EXTRA_MISSING)


def photo_file(tmp_path: Path) -> Path:
    path = tmp_path / "my-cat.jpg"
    Image.fromarray(sample("chelsea.png", (240, 160))).save(path, quality=95)
    return path


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-js"])
def test_cloak_my_photo_and_download_it(live_server: str, browser: Browser, tmp_path: Path, javascript: bool) -> None:
    context = browser.new_context(java_script_enabled=javascript, accept_downloads=True)
    page = context.new_page()
    page.set_default_navigation_timeout(300_000)  # without JavaScript the form post waits for the whole cloak
    try:
        page.goto(live_server + "/cloak")
        expect(page.locator("#privacy")).to_contain_text("never written to the game database")
        page.set_input_files("#cloak-file", str(photo_file(tmp_path)))
        page.get_by_label("subtle", exact=False).check()
        page.get_by_role("button", name="Cloak it").click()
        download_link = page.get_by_role("link", name="Download the cloaked PNG")
        expect(download_link).to_be_visible(timeout=300_000)
        expect(page.locator("#cloak-outcome")).to_contain_text("top 5")
        # the family the cloak had to leave, the WordNet path between the answers, the survival table
        expect(page.locator("#cloak-family")).to_contain_text("the smallest WordNet hypernym holding")
        expect(page.locator("#cloak-path")).to_contain_text("WordNet path")
        table = page.locator("#cloak-survival")
        expect(table.locator("thead")).to_contain_text("pdq (held out)")
        expect(table.locator("thead")).to_contain_text("embedding-lite2 (held out)")
        expect(table.locator("tbody tr")).to_have_count(8)
        for check in ("as delivered", "JPEG 95", "JPEG 85", "JPEG 75", "resized to 512 px", "90% crop", "PNG -> JPEG"):
            expect(table.locator("tbody")).to_contain_text(check)
        if javascript:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "cloak.png"), full_page=True)
        with page.expect_download() as info:
            download_link.click()
        data = Path(info.value.path()).read_bytes()
        with Image.open(io.BytesIO(data)) as png:
            assert png.format == "PNG" and png.size == (240, 160)
            cloaked = np.array(png.convert("RGB"))
        with Image.open(photo_file(tmp_path)) as original:
            assert np.abs(cloaked.astype(int) - np.array(original).astype(int)).max() <= 2
    finally:
        context.close()

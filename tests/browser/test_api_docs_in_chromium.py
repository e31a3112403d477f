"""/api/docs in Chromium: Swagger UI renders the operations from local files, inside the CSP, and offers the bearer
token box (the security schemes)."""

from __future__ import annotations

from playwright.sync_api import Browser, expect


def test_api_docs_show_the_operations(live_server: str, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    refused: list[str] = []
    outside: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if "Security Policy" in message.text else None)
    page.on("request", lambda request: None if request.url.startswith(live_server) else outside.append(request.url))
    try:
        page.goto(live_server + "/api/docs")
        expect(page.locator(".opblock-summary-path", has_text="/api/v1/rounds").first).to_be_visible(timeout=20_000)
        expect(page.locator(".opblock-summary-method", has_text="POST").first).to_be_visible()
        expect(page.locator("button.authorize")).to_be_visible()
        assert page.locator(".opblock").count() >= 20
        assert refused == [], refused
        assert outside == [], outside
    finally:
        context.close()

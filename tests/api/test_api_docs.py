"""/api/docs is Swagger UI from the server's own static files: every script and stylesheet the page loads is one its
Content-Security-Policy allows, nothing from a CDN (which an offline machine could not reach anyway), no inline
script or style the CSP would block (tests/browser/test_api_docs_in_chromium.py shows it renders)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

SCRIPT = re.compile(r"<script\b([^>]*)>")
SOURCE = re.compile(r'\bsrc="([^"]+)"')
LINK = re.compile(r"<link\b([^>]*)>")
HREF = re.compile(r'\bhref="([^"]+)"')
INLINE_STYLE = re.compile(r"<style\b")


def directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as directive -> its sources."""
    parsed = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        parsed[name] = sources
    return parsed


def allowed(url: str, sources: list[str]) -> bool:
    """Whether ``url``, as the page names it, may load under these CSP sources ('self' and host sources only: the
    app's policy uses nothing else)."""
    same_origin = url.startswith("/") and not url.startswith("//")
    if same_origin:
        return "'self'" in sources
    return any(not source.startswith("'") and url.startswith(source) for source in sources)


def test_api_docs_page_uses_only_local_files_within_the_csp(client: TestClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = directives(page.headers["content-security-policy"])
    script_sources = policy.get("script-src", policy["default-src"])
    style_sources = policy.get("style-src", policy["default-src"])
    scripts = [SOURCE.search(attributes) for attributes in SCRIPT.findall(page.text)]
    stylesheets = [
        found.group(1) for link in LINK.findall(page.text) if "stylesheet" in link and (found := HREF.search(link))
    ]
    blocked = [f"script {found.group(1)}" for found in scripts if found and not allowed(found.group(1), script_sources)]
    blocked += [f"stylesheet {href}" for href in stylesheets if not allowed(href, style_sources)]
    if "'unsafe-inline'" not in script_sources:
        blocked += ["an inline script"] * sum(found is None for found in scripts)
    if "'unsafe-inline'" not in style_sources:
        blocked += ["an inline style"] * len(INLINE_STYLE.findall(page.text))
    assert blocked == [], "the page's CSP blocks these"
    assets = [found.group(1) for found in scripts if found] + stylesheets
    assert any("swagger-ui-bundle" in asset for asset in assets) and stylesheets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert client.get(asset).status_code == 200, asset
    assert 'data-openapi-url="/api/openapi.json"' in page.text

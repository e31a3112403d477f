"""/api/docs is Swagger UI from the server's own static files: nothing from a CDN, no inline script the CSP would
block (tests/browser/test_api_docs_in_chromium.py shows it renders)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

ASSET = re.compile(r'(?:src|href)="([^"]+)"')


def test_api_docs_page_uses_only_local_files_within_the_csp(client: TestClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) is None, "an inline script: the CSP blocks it"
    assets = ASSET.findall(page.text)
    assert any("swagger-ui-bundle" in asset for asset in assets) and any(".css" in asset for asset in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert client.get(asset).status_code == 200, asset
    assert 'data-openapi-url="/api/openapi.json"' in page.text

"""The report's charts and the QR code that joins an event."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.web.events.builders import host_event_in_html


def test_charts_are_real_png_and_svg_and_the_qr_code_is_local(client: TestClient) -> None:
    code = host_event_in_html(client)
    for chart in ("accuracy-by-eps", "confusions"):
        png = client.get(f"/events/{code}/charts/{chart}.png")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
        svg = client.get(f"/events/{code}/charts/{chart}.svg")
        assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content[:2000]
        assert "attachment" in svg.headers["content-disposition"]
    assert client.get(f"/events/{code}/charts/pie.png").status_code == 404
    assert client.get(f"/events/{code}/charts/confusions.gif").status_code == 404
    qr = client.get(f"/events/{code}/qr.svg")
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in qr.content and b"<path" in qr.content
    assert b'xmlns="http://www.w3.org/2000/svg"' in qr.content, "a standalone SVG, or <img> shows nothing"

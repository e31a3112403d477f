"""A chunked upload (no Content-Length) is cut at the cap while it streams in (issue #16): of a body ten times the cap
the app pulls little more than the cap before its 413. The live app is called through its ASGI interface with a
body that counts what was pulled from it, an exact count that a socket's buffers would blur; its cloak service is
swapped for one with a small cap that is never started (the cap is checked before any model runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.ml.cloak.service import CloakService

CAP = 100_000
CHUNK = 16 * 1024
BODY_CHUNKS = 64  # about ten times the cap
BOUNDARY = "pulledpulled"


async def post_chunked(app: Any, path: str, accept: str) -> tuple[int, int, int]:
    """POST a multipart upload in chunks, without Content-Length. Returns the status and the bytes the app pulled
    of the whole body's."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    pieces = [head, *[b"x" * CHUNK] * BODY_CHUNKS, f"\r\n--{BOUNDARY}--\r\n".encode()]
    given = pulled = status = 0
    answered = False

    async def receive() -> dict[str, Any]:
        nonlocal given, pulled
        if given == len(pieces) or answered:
            return {"type": "http.disconnect"}
        piece = pieces[given]
        given += 1
        pulled += len(piece)
        return {"type": "http.request", "body": piece, "more_body": given < len(pieces)}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, answered
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            answered = True

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"transfer-encoding", b"chunked"),
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
            (b"accept", accept.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)
    return status, pulled, sum(map(len, pieces))


@pytest.mark.parametrize(
    ("path", "accept"),
    [("/api/v1/cloak", "application/json"), ("/api/v1/classify", "application/json"), ("/cloak", "text/html")],
)
def test_a_chunked_upload_is_refused_before_it_is_pulled_in_full(
    client: TestClient, tmp_path: Path, path: str, accept: str
) -> None:
    app, portal = cast(FastAPI, client.app), client.portal
    assert portal is not None, "the live app runs in its test client's portal"
    state = app.state
    kept = state.cloak  # set back by hand: monkeypatch would delete what a State holds outside its __dict__
    state.cloak = CloakService(result_dir=tmp_path, max_bytes=CAP)
    try:
        status, pulled, whole = portal.call(post_chunked, app, path, accept)
    finally:
        state.cloak = kept
    assert status == 413
    assert pulled <= 2 * CAP, f"the app pulled {pulled:,} of {whole:,} bytes before its 413"

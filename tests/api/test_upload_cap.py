"""Every upload route cuts a body at the cap while it streams in: a chunked upload without Content-Length gets its
413 before it is read in full (on loopback, through uvicorn, with most of the body never sent)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware.sessions import SessionMiddleware

from app.api.cloak import FORM_OVERHEAD, UploadQueue
from app.api.cloak import router as api_cloak_router
from app.db.session import open_database
from app.errors import ArenaError
from app.ml.cloak.service import CloakService
from app.web.cloak import router as web_cloak_router
from app.web.templating import build_templates

MAX_BYTES = 100_000
CHUNK = 16 * 1024


def upload_app(result_dir: Path) -> FastAPI:
    """The upload routes with a cloak service that is never started: the cap is checked before any model runs."""
    app = FastAPI()
    app.state.cloak = CloakService(result_dir=result_dir, max_bytes=MAX_BYTES)
    app.state.upload_queue = UploadQueue(4)
    app.state.templates = build_templates()
    app.state.database = open_database(f"sqlite:///{result_dir / 'empty.db'}")  # the page's header asks for one
    app.add_middleware(SessionMiddleware, secret_key="test-secret-key-not-for-production")  # the page's CSRF token
    app.include_router(api_cloak_router)
    app.include_router(web_cloak_router)

    @app.exception_handler(ArenaError)
    async def arena_error(_request: Request, error: ArenaError) -> JSONResponse:
        return JSONResponse({"detail": error.message}, status_code=error.status_code)

    return app


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    config = uvicorn.Config(upload_app(tmp_path_factory.mktemp("cloak")), host="127.0.0.1", port=0, log_level="error")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield running.servers[0].sockets[0].getsockname()[1]
    running.should_exit = True
    thread.join(timeout=10)


def chunked_upload_status(port: int, path: str, sent_bytes: int) -> tuple[str, int]:
    """Send a multipart upload in chunks, no Content-Length, ``sent_bytes`` of a body that would go on for
    megabytes, and never its end; then read the reply. Returns the status line and the bytes sent."""
    boundary = "capcapcap"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\nAccept: application/json\r\n\r\n"
            ).encode()
        )
        sent = 0
        for chunk in [head] + [b"x" * CHUNK] * (sent_bytes // CHUNK):
            try:
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:  # the server has answered and closed: it read no further
                break
            sent += len(chunk)
        reply = conn.recv(4096).decode("latin-1")
    return reply.split("\r\n", 1)[0], sent


@pytest.mark.parametrize("path", ["/api/v1/cloak", "/api/v1/classify", "/cloak"])
def test_a_chunked_upload_is_cut_at_the_cap_before_it_is_read_in_full(server: int, path: str) -> None:
    status, sent = chunked_upload_status(server, path, sent_bytes=MAX_BYTES + FORM_OVERHEAD + 4 * CHUNK)
    assert status.split(" ")[1] == "413", status  # on main: the server waits for the rest, and recv times out
    assert sent <= MAX_BYTES + FORM_OVERHEAD + 5 * CHUNK

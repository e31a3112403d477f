"""A real `arena serve` on loopback: the host key entered on a second device stays out of its log; then, holding an
open event stream, it is told to stop (SIGTERM, as docker stop does): the stream ends at once instead of being
cancelled at the graceful shutdown timeout, and the lifespan shutdown (the cloak's clean-up of uploads, the model
service, the database) runs before the process exits."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHUTDOWN_TIMEOUT_S = 20  # longer than an ended stream needs: a cancelled one would show in the log
START_LIMIT_S = 180  # loading torch and the opponent on 2 busy cores

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_live(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_LIMIT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"arena serve exited with {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/livez", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"arena serve did not answer /livez:\n{log.read_text()}")


def enter_host_key(base: str, code: str, key: str) -> None:
    """The host key typed on another device, as its browser sends it: a form post."""
    with httpx.Client(base_url=base, follow_redirects=True) as browser:
        page = browser.get(f"/events/{code}/host", headers={"Accept": "text/html"})
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text
        entered = browser.post(f"/events/{code}/host", data={"key": key, "csrf_token": csrf.group(1)})
        assert entered.status_code == 200 and "host-key" in entered.text, "the console, after the redirect"


def test_sigterm_ends_the_event_streams_and_runs_the_shutdown(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("ARENA_")}
    env.update(
        PYTHONPATH=str(ROOT),
        ARENA_DATABASE_URL=f"sqlite:///{tmp_path / 'arena.db'}",
        ARENA_SECRET_KEY="a-test-key-that-is-long-enough-for-this",
        ARENA_OPPONENTS="fashion-cnn",
        ARENA_POOL_SIZE="0",
        ARENA_DEVICE="cpu",
        ARENA_TORCH_THREADS="1",
        ARENA_CLOAK_DIR=str(tmp_path / "cloak"),
        ARENA_SHUTDOWN_TIMEOUT_S=str(SHUTDOWN_TIMEOUT_S),
        ARENA_LOG_LEVEL="info",
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_live(base, server, log)
        event = httpx.post(f"{base}/api/v1/events", json={"name": "Stop", "eps_min": 4 / 255, "eps_max": 12 / 255})
        assert event.status_code == 201, event.text
        code, host_key = event.json()["code"], event.json()["host_token"]
        enter_host_key(base, code, host_key)
        with httpx.stream("GET", f"{base}/events/{code}/stream?role=screen", timeout=SHUTDOWN_TIMEOUT_S * 2) as stream:
            chunks = stream.iter_text()
            assert next(chunks).startswith("retry:")
            server.send_signal(signal.SIGTERM)
            "".join(chunks)  # returns once the server ends the stream
        # uvicorn re-raises the signal once it has shut down, so the exit status is that of SIGTERM.
        assert server.wait(timeout=SHUTDOWN_TIMEOUT_S + 30) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    output_text = log.read_text()
    assert "timeout graceful shutdown exceeded" not in output_text, "the stream was cancelled, not ended"
    assert "stopped: cloak results deleted, model service and database closed" in output_text, output_text
    assert "Application shutdown complete" in output_text
    assert f"POST /events/{code}/host" in output_text and host_key not in output_text, "the host key is never logged"

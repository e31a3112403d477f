"""A live server (uvicorn, real model service, SQLite file) and Debian's Chromium driven by Playwright.

Playwright never downloads a browser here: it launches /usr/bin/chromium with the flags that keep it off the
network. Deselect with `-m "not browser"` when iterating locally."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

CHROMIUM = os.environ.get("ARENA_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    env = dict(os.environ)
    env.update(
        ARENA_DATABASE_URL=f"sqlite:///{tmp_path_factory.mktemp('live-db') / 'arena.db'}",
        ARENA_SECRET_KEY="browser-test-secret",
        ARENA_DEVICE="cpu",
        ARENA_ENVIRONMENT="test",
        # One torch thread: on a shared 2-core machine two OpenMP threads fighting other processes made one
        # PGD-20 image take ~6 s instead of ~0.05 s (measured 2026-11-25), and the browser tests time out.
        ARENA_TORCH_THREADS="1",
        # The paint test's robot strokes as soon as the last answer is in, faster than a person and than the stroke
        # limits allow; tests/api/test_rate_limits.py checks those limits.
        ARENA_RATE_LIMIT_STROKES_PER_PLAYER="100000/minute",
    )
    argv = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    # Seconds with the committed models/*.eligible.json; where one is stale the server asks that opponent about all
    # test images instead (all of them: ~110 s on 2 cores), and the test should say so, not time out.
    with serving(argv, env, log_path, f"http://127.0.0.1:{port}") as base:
        yield base


@contextmanager
def serving(argv: list[str], env: dict[str, str], log_path: Path, base: str, cwd: Path | None = None) -> Iterator[str]:
    """Start a server process, wait until its /healthz answers 200 (failing the test with its log if it exits or takes
    more than 300 s), yield its base URL, and end it (terminate, then kill) whatever the test did."""
    with log_path.open("w") as log:
        server = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while True:
            if server.poll() is not None:
                pytest.fail(f"server exited with {server.returncode}:\n{log_path.read_text()}", pytrace=False)
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server did not become healthy:\n{log_path.read_text()}", pytrace=False)
            time.sleep(0.25)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make test-deps)", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()

"""The remote opponent against a loopback fake of a hosted vision API that throttles: 429 with Retry-After (in
seconds and as an HTTP date) is waited out and sent again without billing, the per-photo query budget stops an
attack at its limit, and every attack reports the queries it used. No ImageNet model needed."""

from __future__ import annotations

import email.utils
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from app.ml.cloak.remote import (
    QueryBudgetExhausted,
    RemoteClassifier,
    RemoteClassifierConfig,
    Throttled,
    retry_after_s,
    score_attack,
)


class FakeVisionApi(BaseHTTPRequestHandler):
    """Answers 429 to every ``throttle_every``-th request, else labels scored by the image's mean brightness."""

    requests = 0
    throttle_every = 3
    retry_after = "0"

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests += 1
        if self.throttle_every and type(self).requests % self.throttle_every == 0:
            self.send_response(429)
            self.send_header("Retry-After", self.retry_after)
            self.end_headers()
            return
        score = (sum(body[-64:]) % 100) / 100  # changes with the image, deterministic
        answer = {"top5": [{"name": "cat", "probability": 0.5 + score / 2}, {"name": "dog", "probability": 0.1}]}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_api() -> Iterator[str]:
    FakeVisionApi.requests, FakeVisionApi.throttle_every, FakeVisionApi.retry_after = 0, 3, "0"
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeVisionApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/classify"
    server.shutdown()
    server.server_close()


def opponent(url: str, **config: object) -> tuple[RemoteClassifier, list[float]]:
    remote = RemoteClassifier(RemoteClassifierConfig(url=url, rate_limit_per_s=1000, **config))  # type: ignore[arg-type]
    waits: list[float] = []
    remote.sleep = waits.append  # record the waits instead of sleeping them
    return remote, waits


PHOTO = np.full((16, 16, 3), 120, dtype=np.uint8)


def test_429_is_waited_out_as_retry_after_asks_and_not_billed(fake_api: str) -> None:
    FakeVisionApi.retry_after = "7"
    remote, waits = opponent(fake_api)
    for _ in range(4):
        assert remote.classify(PHOTO).top == "cat"
    assert FakeVisionApi.requests == 5  # the third request was throttled and sent again
    assert remote.queries == 4 and remote.throttled == 1 and remote.waited_s == 7.0
    assert any(w > 6.5 for w in waits)  # the next request waited the 7 s the server asked for


def test_retry_after_as_an_http_date_and_the_cap() -> None:
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_s(date, default=1.0, now=now) == pytest.approx(30.0, abs=1.0)
    assert retry_after_s("12", default=1.0) == 12.0
    assert retry_after_s(None, default=2.0) == 2.0 and retry_after_s("soon", default=3.0) == 3.0


def test_a_server_that_keeps_throttling_is_given_up_on(fake_api: str) -> None:
    FakeVisionApi.throttle_every = 1
    FakeVisionApi.retry_after = "100000"
    remote, waits = opponent(fake_api, max_retries=2, max_wait_s=5.0)
    with pytest.raises(Throttled):
        remote.classify(PHOTO)
    assert FakeVisionApi.requests == 3 and remote.queries == 0 and remote.throttled == 2
    assert remote.waited_s == 10.0  # each wait capped at max_wait_s


def test_the_photo_budget_stops_an_attack_and_the_queries_are_reported(fake_api: str) -> None:
    remote, _ = opponent(fake_api, photo_budget=6, query_budget=10)
    first = score_attack(remote, PHOTO, eps=4 / 255, max_queries=50)
    assert first.queries == 6 and remote.photo_queries == 6 and remote.queries == 6
    with pytest.raises(QueryBudgetExhausted, match="this photo"):
        remote.classify(PHOTO)
    second = score_attack(remote, PHOTO, eps=4 / 255, max_queries=50)  # a new photo: its own budget
    assert second.queries == 4 and remote.queries == 10  # ... but the life-long budget is spent after 4
    with pytest.raises(QueryBudgetExhausted, match="query budget of 10"):
        remote.classify(PHOTO)
    assert remote.throttled >= 1  # the fake throttled along the way, and it cost no query

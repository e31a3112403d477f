"""Answer exports read each page in a short session (issue #16): downloaders that read one row and stall hold no
database connection, so with as many connections as stalled downloaders an ordinary request is still served. Through
the live app, its database handle swapped for one whose pool has exactly that many connections and a short wait."""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import cast

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.db.session import open_database
from tests.helpers import new_player, play

DOWNLOADERS = 3
ANSWERS = 3  # more than one row: a downloader that read one is still in the middle of its stream
POOL_TIMEOUT_S = 2


def test_downloaders_stalled_mid_stream_leave_the_pool_to_everyone_else(client: TestClient) -> None:
    for index in range(ANSWERS):
        play(client, new_player(client, f"answerer{index}"))
    app, portal = cast(FastAPI, client.app), client.portal
    assert portal is not None, "the live app runs in its test client's portal"
    small_pool = open_database(
        app.state.settings.database_url,
        pool_size=DOWNLOADERS,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_S,
    )
    # Swapped and set back by hand: monkeypatch's undo would delete what a State holds outside its __dict__.
    kept = app.state.database
    app.state.database = small_pool
    try:
        with ExitStack() as downloads:
            started = []
            for _ in range(DOWNLOADERS):
                download = downloads.enter_context(client.stream("GET", "/api/v1/export/answers.jsonl"))
                assert download.status_code == 200
                rows = download.iter_text()
                first = next(rows, "")  # then this client stops reading
                assert first, "a downloader got no row: the stalled ones before it hold every connection"
                started.append((first, rows))

            latecomer = client.post("/api/v1/players", json={"nickname": "latecomer"})
            assert latecomer.status_code == 201, f"stalled downloads held the pool: {latecomer.text}"

            for first, rows in started:  # the stalled downloaders read on and get every row
                assert len([json.loads(line) for line in (first + "".join(rows)).splitlines()]) == ANSWERS
    finally:
        app.state.database = kept
        portal.call(small_pool.dispose)

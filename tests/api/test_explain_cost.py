"""GET /api/v1/rounds/{id}/explain costs the model worker hundreds of forward passes (issue #16): a round's
explanation is computed once however often it is asked for, and one player cannot queue explanations without
bound. Through the live app, counting the calls of the computation the model service runs on its worker
(app.ml.service.in_process.explain_round) and of the service's explain()."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.ml.measure.explain import explain as compute_explanation
from app.ml.service import in_process
from tests.helpers import auth, new_player, play

ROUNDS = 6  # explanations one player asks for at once
ADMITTED_AT_MOST = 2  # on main: the one the worker runs and one waiting in the explanation lane for this player


def test_a_rounds_explanation_is_computed_once_however_often_it_is_asked_for(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed: list[int] = []

    def counted(model: Any, job: Any) -> Any:
        computed.append(job.seed)
        return compute_explanation(model, job)

    monkeypatch.setattr(in_process, "explain_round", counted)
    player = new_player(client, "rereader")
    round_, _reveal = play(client, player)
    url = f"/api/v1/rounds/{round_['round_id']}/explain"
    first, again = client.get(url, headers=auth(player)), client.get(url, headers=auth(player))
    assert first.status_code == again.status_code == 200, again.text
    assert len(computed) == 1, f"one round's explanation was computed {len(computed)} times"
    assert again.json() == first.json()  # elapsed_ms too: the same computation, not a second one


def test_one_player_cannot_queue_explanations_without_bound(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    player = new_player(client, "impatient")
    urls = [f"/api/v1/rounds/{play(client, player)[0]['round_id']}/explain" for _ in range(ROUNDS)]

    service = cast(FastAPI, client.app).state.model_service
    asked = 0
    everyone_asked = threading.Event()
    explain = service.explain

    async def counted_explain(job: Any) -> Any:
        nonlocal asked
        asked += 1
        if asked == ROUNDS:
            everyone_asked.set()
        return await explain(job)

    def held_compute(model: Any, job: Any) -> Any:
        # The worker stays busy with the first explanation until every request has reached the service, so what
        # each of them is told does not depend on how fast the worker is.
        everyone_asked.wait(timeout=30)
        return compute_explanation(model, job)

    monkeypatch.setattr(service, "explain", counted_explain)
    monkeypatch.setattr(in_process, "explain_round", held_compute)
    with ThreadPoolExecutor(ROUNDS) as pool:
        replies = list(pool.map(lambda url: client.get(url, headers=auth(player)), urls))

    assert asked == ROUNDS
    admitted = [reply for reply in replies if reply.status_code == 200]
    refused = [reply for reply in replies if reply.status_code != 200]
    assert 1 <= len(admitted) <= ADMITTED_AT_MOST, f"{len(admitted)} of {ROUNDS} explanations admitted at once"
    for reply in refused:
        assert reply.status_code in (429, 503), reply.text
        assert int(reply.headers["Retry-After"]) >= 1

"""A together event on the text pack (issue #18), on both backends and the real model service: the phone and the
big screen show the room's text, an answer is only acknowledged while the countdown runs (no truth, no original,
no changed words, no points anywhere), and once the text reveals the screen shows the original with the changed
words marked and the report counts the answer."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from app.game.text import TEXT_CLASS_NAMES
from tests.helpers import csrf_from, host_auth, new_event
from tests.web.events.builders import enter_host_key, join_event_in_html
from tests.web.test_reveal_paths import run_sql

PHASE = [{"opponent": "definitions-tfidf", "attack": "textfooler"}]


def test_a_together_text_event_with_its_big_screen(client: TestClient) -> None:
    event = new_event(client, phases=PHASE, style="together", rounds=2, round_seconds=120)
    code = event["code"]
    assert client.get(f"/api/v1/events/{code}").json()["eps_levels"] == [0.1, 0.2, 0.3]
    client.post(f"/api/v1/events/{code}/start", headers=host_auth(event))
    join_event_in_html(client, code, "Ada")
    opened = client.post(f"/api/v1/events/{code}/next-image", headers=host_auth(event))
    assert opened.status_code == 200, opened.text
    ((shown, original, true_label),) = run_sql(
        client, "SELECT shown_text, original_text, true_label FROM shared_rounds"
    )
    phone = client.get(f"/events/{code}/play")
    assert 'id="shown-text"' in phone.text and phone.text.count('name="choice"') == 8
    round_id = re.search(r'data-round-id="([^"]+)"', phone.text).group(1)  # type: ignore[union-attr]
    screen = client.get(f"/events/{code}/screen").text
    assert 'id="screen-shown-text"' in screen and "screen-original-text" not in screen

    truth = TEXT_CLASS_NAMES[true_label]
    answered = client.post(
        f"/events/{code}/play/rounds/{round_id}/answer",
        data={"choice": truth, "csrf_token": csrf_from(phone.text)},
        headers={"HX-Request": "true"},
    )
    assert f"Answer locked in: {truth}" in answered.text and "Machine said" not in answered.text
    enter_host_key(client, code, event["host_token"])
    for url in (f"/play/text/rounds/{round_id}", f"/events/{code}/screen", f"/events/{code}/play"):
        page = client.get(url).text
        assert "screen-original-text" not in page and 'id="original-text"' not in page and "Machine said" not in page
        assert "<del" not in page and "Truth:" not in page
    assert client.get(f"/api/v1/text/rounds/{round_id}", headers={"Accept": "application/json"}).status_code in (
        401,
        409,
    )
    assert client.get("/api/v1/stats/text").json() == [], "an answer still counting down counts nowhere"
    assert client.get("/api/v1/export/answers.json").json() == []

    run_sql(client, "UPDATE shared_rounds SET closes_at = :t", t=datetime.now(UTC) - timedelta(seconds=2))
    screen = client.get(f"/events/{code}/screen").text
    assert 'id="screen-original-text"' in screen and "Truth:" in screen and f">{truth}<" in screen
    if shown != original:
        assert '<del class="changed">' in screen and '<ins class="changed">' in screen
    phone = client.get(f"/events/{code}/play").text
    assert "Machine said" in phone and 'id="original-text"' in phone
    assert client.get("/api/v1/stats/text").json()[0]["n"] == 1
    report = client.get(f"/events/{code}/report")
    assert report.status_code == 200 and "% of words" in report.text
    rows = client.get("/api/v1/export/answers.json").json()
    assert rows[0]["original_text"] == original and rows[0]["shown_text"] == shown


def test_the_host_form_offers_the_text_pack(client: TestClient) -> None:
    page = client.get("/host").text
    assert '<option value="definitions"' in page and "definitions-tfidf" in page and "textfooler" in page
    created = client.post(
        "/host",
        data={
            "name": "Words",
            "pack": "definitions",
            "opponent": "definitions-minilm",
            "attack": "deepwordbug",
            "eps_min": "4",
            "eps_max": "4",
            "style": "own_pace",
            "csrf_token": csrf_from(page),
        },
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    mismatch = client.post(
        "/host",
        data={"name": "Mixed", "pack": "definitions", "opponent": "fashion-cnn", "attack": "pgd", "eps_min": "4",
              "csrf_token": csrf_from(page)},
    )  # fmt: skip
    assert mismatch.status_code == 422

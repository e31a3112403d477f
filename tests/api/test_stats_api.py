"""GET /api/v1/stats on a known data set (tests/stats/science_data.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app import messages
from app.stats import science
from app.stats.consistency import BOOTSTRAP_SEED
from app.stats.intervals import wilson_interval
from tests.stats.science_data import EVENT_CODE, seed_science_data


def stats(client: TestClient, **params: str) -> dict:
    response = client.get("/api/v1/stats", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_groups_by_condition_eps_attack_opponent_by_default(client: TestClient) -> None:
    counts = seed_science_data(client.app.state.settings.database_url)
    body = stats(client)
    assert body["group_by"] == list(science.DEFAULT_GROUP_BY)
    groups = body["groups"]
    # Every answer is counted once, except those to the image still counting down and the unanswered round.
    assert sum(g["n"] for g in groups) == counts["counted"]
    keys = [g["keys"] for g in groups]
    assert {"condition": "clean", "eps_bucket": "linf:0/255", "attack": "pgd", "opponent": "fashion-cnn"} in keys
    assert {"condition": "adversarial", "eps_bucket": "l2:1.5", "attack": "pgd-l2", "opponent": "fashion-cnn"} in keys
    # Buckets sort by norm, then size (4 before 8 before 16 grey levels, not as text).
    pgd = [k["eps_bucket"] for k in keys if k["attack"] == "pgd" and k["condition"] == "adversarial"]
    assert pgd == ["linf:4/255", "linf:8/255", "linf:16/255"]
    for group in groups:
        assert group["human_accuracy"] == pytest.approx(group["human_correct"] / group["n"])
        assert group["human_ci"] == pytest.approx(list(wilson_interval(group["human_correct"], group["n"])))
        assert group["model_ci"] == pytest.approx(list(wilson_interval(group["model_correct"], group["n"])))
        consistency = group["error_consistency_model"]
        assert consistency["trials"] == group["n"]
        if consistency["kappa"] is not None and consistency["ci"] is not None:
            low, high = consistency["ci"]
            assert -1.0 <= low <= high <= 1.0
    assert body["bootstrap"]["seed"] == BOOTSTRAP_SEED and "grey levels" in body["eps_buckets"]


def test_the_event_filter_and_people_vs_people(client: TestClient) -> None:
    seed_science_data(client.app.state.settings.database_url)
    body = stats(client, event=EVENT_CODE.lower(), group_by="")
    (group,) = body["groups"]
    # Three closed images x four people; the open fourth image is not counted.
    assert group["keys"] == {} and group["n"] == 12
    assert group["human_correct"] == 7 and group["model_correct"] == 4
    people = group["error_consistency_people"]
    # Worked by hand in tests/stats/test_consistency.py: six pairs, kappas -0.5, 0.4, 1, -0.8, -0.5, 0.4.
    assert people["pairs"] == 6 and people["trials"] == 3
    assert people["kappa"] == pytest.approx(0.0, abs=1e-12)
    # People vs model, pooled over the 12 answers: model right only on image 3 (people right 3 of 4 there).
    # both right 3, people only 4, model only 1, both wrong 4: c_obs 7/12, c_exp (7/12)(4/12) + (5/12)(8/12).
    c_exp = (7 / 12) * (4 / 12) + (5 / 12) * (8 / 12)
    assert group["error_consistency_model"]["kappa"] == pytest.approx((7 / 12 - c_exp) / (1 - c_exp))
    # Person by person against the model (right on image 3 only, [0, 0, 1]): rooms' rows [1,0,1] -> 0.4,
    # [1,1,0] -> -0.8, [0,0,1] -> 1, [1,0,1] -> 0.4 (worked as for pairs of people); mean 0.25.
    by_person = group["error_consistency_model_by_person"]
    assert by_person["people"] == 4 and by_person["kappa"] == pytest.approx(0.25)


def test_filters_narrow_the_trials(client: TestClient) -> None:
    counts = seed_science_data(client.app.state.settings.database_url)
    everything = stats(client, group_by="")["groups"][0]["n"]
    assert everything == counts["counted"]
    fgsm = stats(client, attack="fgsm", group_by="attack")["groups"]
    assert [g["keys"] for g in fgsm] == [{"attack": "fgsm"}] and fgsm[0]["n"] == 12
    clean = stats(client, condition="clean", group_by="condition")["groups"]
    assert clean[0]["n"] == 8
    # The solo rounds were answered on 2026-11-20, the event on the 21st.
    first_day = stats(client, since="2026-11-20", until="2026-11-20", group_by="")["groups"][0]["n"]
    assert first_day == everything - 12
    assert stats(client, since="2026-11-21", group_by="")["groups"][0]["n"] == 12
    assert stats(client, opponent="nobody")["groups"] == []
    assert stats(client, pack="fashion", group_by="pack")["groups"][0]["n"] == everything
    by_event = stats(client, group_by="event")["groups"]
    assert [g["keys"]["event"] for g in by_event] == [None, EVENT_CODE]


@pytest.mark.parametrize("bad", ["colour", "attack,attack", "eps"])
def test_a_bad_group_by_is_a_422_naming_the_valid_keys(client: TestClient, bad: str) -> None:
    response = client.get("/api/v1/stats", params={"group_by": bad})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert all(key in detail for key in science.GROUP_KEYS)


def test_bad_dates_and_unknown_events(client: TestClient) -> None:
    reversed_days = client.get("/api/v1/stats", params={"since": "2026-11-21", "until": "2026-11-20"})
    assert reversed_days.status_code == 422 and reversed_days.json()["detail"] == messages.STATS_DATES_INVALID
    assert client.get("/api/v1/stats", params={"since": "yesterday"}).status_code == 422
    assert client.get("/api/v1/stats", params={"event": "NOPE42"}).status_code == 404


def test_documented_in_the_openapi_schema(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    operation = schema["paths"]["/api/v1/stats"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert names == {"event", "pack", "opponent", "attack", "condition", "since", "until", "group_by"}
    assert {"200", "404", "422"} <= set(operation["responses"])
    group = schema["components"]["schemas"]["GroupOut"]["properties"]
    assert {"keys", "n", "human_accuracy", "human_ci", "model_accuracy", "model_ci"} <= set(group)

"""Why the machine fails for a stored round: the page, its charts and GET /api/v1/rounds/{id}/explain, on both
backends, with the real fashion-cnn behind the model service."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from app import messages
from tests.api.test_events_api import run_sql
from tests.helpers import auth, join_event, new_event, new_player, web_join
from tests.helpers import host_action as act


def api_round(client: TestClient, player: dict[str, str]) -> dict:
    response = client.post("/api/v1/rounds", headers=auth(player))
    assert response.status_code == 201, response.text
    return response.json()


def test_the_api_explains_an_answered_round_with_the_models_own_answers(client: TestClient) -> None:
    player = new_player(client, "explainer")
    round_ = api_round(client, player)
    url = f"/api/v1/rounds/{round_['round_id']}/explain"
    before = client.get(url, headers=auth(player))
    assert before.status_code == 404 and before.json()["detail"] == messages.REVEAL_NOT_READY
    answered = client.post(round_["answer_url"], headers=auth(player), json={"choice": round_["choices"][0]})
    assert answered.status_code == 200, answered.text
    reveal = answered.json()

    response = client.get(url, headers=auth(player))
    assert response.status_code == 200, response.text
    body = response.json()
    names = body["class_names"]
    assert names[body["true_label"]] == reveal["true_label"]
    assert names[body["stored_model_label"]] == reveal["model_label"]
    # The stored pixels, re-read by the model: the clean image sits in the clean answer's region of the slice and
    # the shown image in the region of the answer the model gave during the round.
    grid = np.array(body["slice"]["labels"])
    image, shown = body["slice"]["image_point"], body["slice"]["shown_point"]
    assert grid[image["row"], image["column"]] == image["label"] == body["clean_label"]
    assert grid[shown["row"], shown["column"]] == shown["label"] == body["stored_model_label"] == body["shown_label"]
    assert body["slice"]["a"][image["column"]] == 0.0 and body["slice"]["b"][image["row"]] == 0.0
    assert body["slice"]["a"][shown["column"]] == shown["a"] > 0
    assert np.array(body["saliency"]["clean"]).shape == (28, 28) == np.array(body["saliency"]["shown"]).shape
    assert body["saliency"]["method"] == "smoothgrad" and body["differentiable"] is True
    assert 0.0 <= body["linearity"]["r2_true_class"] <= 1.0
    assert body["linearity"]["classes"][0] == body["true_label"]
    assert np.array(body["linearity"]["logits"]).shape == (
        len(body["linearity"]["classes"]),
        len(body["linearity"]["t"]),
    )

    stranger = new_player(client, "stranger")
    other = client.get(url, headers=auth(stranger))
    assert other.status_code == 404 and other.json()["detail"] == messages.ROUND_NOT_FOUND
    assert client.get(url).status_code == 401


def test_the_page_and_its_charts_only_after_the_answer_and_only_for_the_player(client: TestClient) -> None:
    token = web_join(client, "curious")
    created = client.post("/play/rounds", data={"csrf_token": token}, follow_redirects=False)
    assert created.status_code == 303
    round_url = created.headers["location"]
    round_id = round_url.rstrip("/").split("/")[-1]
    page_url = f"{round_url}/explain"
    assert client.get(page_url).status_code == 404
    assert client.get(f"{page_url}/slice.png").status_code == 404

    answered = client.post(f"{round_url}/answer", data={"choice": "Bag", "csrf_token": token}, follow_redirects=False)
    assert answered.status_code == 303
    page = client.get(page_url)
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "private, no-store"
    for section in ("explain-saliency", "explain-slice", "explain-linearity"):
        assert f'id="{section}"' in page.text
    assert page.text.count('src="data:image/png;base64,') == 3
    assert "SmoothGrad" in page.text and "R² =" in page.text
    png = client.get(f"{page_url}/slice.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size[0] > 200
    svg = client.get(f"{page_url}/linearity.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.lstrip().startswith("<?xml") and "<svg" in svg.text
    assert client.get(f"{page_url}/nonsense.png").status_code == 404
    assert client.get(f"{page_url}/slice.gif").status_code == 404

    client.cookies.clear()  # someone else, or nobody
    assert client.get(f"{page_url}/saliency.png").status_code == 404
    assert client.get(page_url, follow_redirects=False).status_code == 303
    web_join(client, "curious")
    assert client.get(page_url).status_code == 404
    assert client.get(f"/play/rounds/{round_id}").status_code == 404


def test_a_together_image_is_explained_only_after_its_countdown(client: TestClient) -> None:
    event = new_event(client, style="together", rounds=1, round_seconds=60)
    ada = join_event(client, event, "Ada")
    act(client, event, "start")
    act(client, event, "next-image")
    round_ = api_round(client, ada)
    locked = client.post(round_["answer_url"], json={"choice": "Bag"}, headers=auth(ada))
    assert locked.status_code == 200 and locked.json()["locked"] is True
    url = f"/api/v1/rounds/{round_['round_id']}/explain"
    hidden = client.get(url, headers=auth(ada))
    assert hidden.status_code == 404 and hidden.json()["detail"] == messages.TRUTH_HIDDEN_UNTIL_CLOSE
    run_sql(client, "UPDATE shared_rounds SET closes_at = :t", t=datetime.now(UTC) - timedelta(seconds=5))
    shown = client.get(url, headers=auth(ada))
    assert shown.status_code == 200 and shown.json()["slice"]["shown_point"]["label"] == shown.json()["shown_label"]

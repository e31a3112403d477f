"""Fool it by hand over the JSON API: budgets enforced on the server, the win, the score, the comparison with the
machine's smallest attack, someone else's painting served as a round, the stats by maker and the dataset export."""

from __future__ import annotations

import base64
import csv
import io
from functools import cache
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.images import from_png
from app.ml import get_pack, load_opponent
from app.ml.measure.smallest import smallest_attack
from app.ml.service.classify_contracts import SmallestJob
from tests.helpers import answer, auth, new_player

IMAGE = 0  # a test image fashion-cnn gets right (its label: Ankle boot)


@cache
def machine_linf(index: int = IMAGE) -> np.ndarray:
    """The machine's smallest L∞ attack on test image ``index``, as the model service computes it (seeded)."""
    images, labels = get_pack("fashion").load_split("test")
    job = SmallestJob("fashion-cnn", index, "linf")
    result = smallest_attack(load_opponent("fashion-cnn"), images[index], int(labels[index]), job, torch.device("cpu"))
    assert result.found
    return result.adversarial


def start(client: TestClient, player: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/paint", headers=auth(player), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def stroke(client: TestClient, player: dict[str, str] | None, painting: dict[str, Any], **body: Any) -> Any:
    """One stroke, with the player's token (or, for None, the browser's cookie and its page's CSRF header)."""
    headers = auth(player) if player is not None else {"X-CSRF-Token": body.pop("csrf")}
    return client.post(painting["strokes_url"], headers=headers, json=body)


def painted_pixels(client: TestClient, painting: dict[str, Any], kind: str = "painted") -> np.ndarray:
    response = client.get(painting[f"{kind}_url"])
    assert response.status_code == 200
    return from_png(response.content)


def paint_the_machines_change(
    client: TestClient, player: dict[str, str], painting: dict[str, Any], index: int = IMAGE
) -> dict[str, Any]:
    """Brush strokes that rebuild the machine's smallest L∞ change (one stroke per grey-level step), until fooled."""
    clean = painted_pixels(client, painting, "clean")
    delta = machine_linf(index).astype(int) - clean.astype(int)
    reply: dict[str, Any] = painting
    for amount in sorted(set(delta.flatten()) - {0}, key=abs):
        ys, xs = np.nonzero(delta == amount)
        points = [[int(x), int(y)] for x, y in zip(xs, ys, strict=True)]
        for start_at in range(0, len(points), 400):
            response = stroke(
                client, player, painting, tool="brush", points=points[start_at : start_at + 400], amount=int(amount)
            )
            assert response.status_code == 200, response.text
            reply = response.json()
            if reply["status"] == "fooled":
                return reply
    return reply


def test_brush_strokes_stay_in_the_budget_whatever_the_client_sends(client: TestClient) -> None:
    player = new_player(client)
    painting = start(client, player, tool="brush", budget=10, image_index=IMAGE)
    assert painting["status"] == "painting" and painting["model_label"] == painting["true_label"] == "Ankle boot"
    assert [guess["label"] for guess in painting["top3"]][0] == "Ankle boot"
    reply = stroke(client, player, painting, tool="brush", points=[[3, 4], [3, 4], [5, 6]], amount=255)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    clean, painted = painted_pixels(client, painting, "clean"), painted_pixels(client, painting)
    change = painted.astype(int) - clean.astype(int)
    assert np.abs(change).max() <= 10 and body["strokes"] == 1
    assert body["pixels"] == int((change != 0).sum()) and body["linf"] == pytest.approx(
        np.abs(change).max() / 255, abs=1e-6
    )
    assert len(body["top3"]) == 3
    for bad in (
        {"tool": "brush", "points": [[28, 0]], "amount": 5},  # outside the 28x28 image
        {"tool": "brush", "points": [[1, 1]], "amount": 0},
        {"tool": "pencil", "points": [[1, 1]], "value": 9},  # not this painting's tool
        {"tool": "brush", "points": [], "amount": 3},
    ):
        assert stroke(client, player, painting, **bad).status_code == 422, bad
    assert client.post("/api/v1/paint", headers=auth(player), json={"tool": "brush", "budget": 65}).status_code == 422


def test_the_pencil_refuses_a_stroke_past_its_pixel_budget(client: TestClient) -> None:
    player = new_player(client)
    painting = start(client, player, tool="pencil", budget=3, image_index=IMAGE)
    assert stroke(client, player, painting, tool="pencil", points=[[0, 0], [1, 0]], value=255).status_code == 200
    over = stroke(client, player, painting, tool="pencil", points=[[2, 0], [3, 0]], value=255)
    assert over.status_code == 422 and "at most 3" in over.json()["detail"]
    shown = client.get(f"/api/v1/paint/{painting['painting_id']}", headers=auth(player)).json()
    assert shown["strokes"] == 1 and shown["pixels"] == 2  # the refused stroke left nothing behind
    # Painting a pixel back to its original frees its place in the budget.
    clean = painted_pixels(client, painting, "clean")
    back = stroke(client, player, painting, tool="pencil", points=[[0, 0]], value=int(clean[0, 0]))
    assert back.status_code == 200 and back.json()["pixels"] == 1


def test_fooling_the_opponent_wins_scores_the_change_and_compares_with_the_machine(client: TestClient) -> None:
    player, other = new_player(client, "painter"), new_player(client, "nosy")
    painting = start(client, player, tool="brush", budget=32, image_index=IMAGE)
    won = paint_the_machines_change(client, player, painting)
    assert won["status"] == "fooled" and won["model_label"] != "Ankle boot"
    assert won["points"] == max(1, round(100 / (1 + won["pixels"] / 10 + won["l2"])))
    again = stroke(client, player, painting, tool="brush", points=[[1, 1]], amount=3)
    assert again.status_code == 409  # finished: no more strokes
    result = client.get(f"/api/v1/paint/{painting['painting_id']}", headers=auth(player)).json()
    machine = result["machine"]
    assert machine["attack"] == "pgd" and machine["found"]
    assert round(machine["linf"] * 255) == int(
        np.abs(machine_linf().astype(int) - painted_pixels(client, painting, "clean").astype(int)).max()
    )
    assert (
        result["comparison"].startswith("You needed a change of up to")
        and "the machine's best attack (pgd)" in result["comparison"]
    )
    assert client.get(f"/api/v1/paint/{painting['painting_id']}", headers=auth(other)).status_code == 404
    board = client.get("/api/v1/paint-leaderboard").json()
    assert board[0]["nickname"] == "painter" and board[0]["fooled"] == 1 and board[0]["points"] == won["points"]

    # Someone else now gets the painted image as a round, and the stats count it as made by a person.
    seen = client.post("/api/v1/paint-rounds", headers=auth(other))
    assert seen.status_code == 201, seen.text
    round_id = seen.json()["round_id"]
    image = client.get(f"/rounds/{round_id}/adversarial.png")
    assert np.array_equal(from_png(image.content), painted_pixels(client, painting))
    reveal = answer(client, other, {"answer_url": f"/api/v1/rounds/{round_id}/answer"}, "Ankle boot")
    assert reveal["correct"] and not reveal["model_correct"] and reveal["attack"] == "human"
    stats = client.get("/api/v1/stats/painted").json()
    person = stats["maker"]["person"]
    assert person["people"]["n"] == 1 and person["people"]["correct"] == 1 and person["machine"]["correct"] == 0
    assert person["people"]["ci95"][0] < 1.0 == person["people"]["ci95"][1]
    assert client.post("/api/v1/paint-rounds", headers=auth(player)).status_code == 404  # never one's own painting


def test_the_dataset_export_carries_strokes_answers_and_pixels(client: TestClient) -> None:
    player = new_player(client, "=cmd")
    painting = start(client, player, tool="pencil", budget=5, image_index=IMAGE)
    stroke(client, player, painting, tool="pencil", points=[[10, 10], [11, 10]], value=0)
    stroke(client, player, painting, tool="pencil", points=[[12, 10]], value=255)
    give_up = client.post(f"/api/v1/paint/{painting['painting_id']}/give-up", headers=auth(player))
    assert give_up.status_code == 200 and give_up.json()["status"] == "gave_up"
    rows = client.get("/api/v1/paint-export").json()
    assert [row["painting_id"] for row in rows] == [painting["painting_id"]]
    row = rows[0]
    assert row["strokes"] == [
        {"tool": "pencil", "points": [[10, 10], [11, 10]], "value": 0},
        {"tool": "pencil", "points": [[12, 10]], "value": 255},
    ]
    assert [answer["stroke"] for answer in row["answers"]] == [1, 2] and len(row["answers"][0]["probabilities"]) == 10
    assert np.array_equal(from_png(base64.b64decode(row["painted_png_base64"])), painted_pixels(client, painting))
    changed = int((painted_pixels(client, painting) != painted_pixels(client, painting, "clean")).sum())
    assert row["pixels"] == changed >= 1 and row["status"] == "gave_up" and row["true_label"] == "Ankle boot"
    text = client.get("/api/v1/paint-export?format=csv&download=1")
    assert text.headers["content-disposition"].startswith("attachment")
    table = list(csv.DictReader(io.StringIO(text.text)))
    assert table[0]["painting_id"] == painting["painting_id"] and table[0]["nickname"] == "'=cmd"
    assert table[0]["player_id"] == player["player_id"]

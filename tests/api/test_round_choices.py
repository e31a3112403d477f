"""Choosing the opponent and attack of a round: the API, its refusals, and what the reveal says about the attack."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.game import threshold
from tests.helpers import auth, new_event, new_player, new_round, play, start_event

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def test_a_black_box_round_stores_and_reveals_its_query_count(client: TestClient) -> None:
    player = new_player(client)
    round_, reveal = play(client, player, attack="square")
    assert (round_["attack"], round_["opponent"], round_["norm"]) == ("square", "fashion-cnn", "linf")
    assert reveal["threat_model"] == "score" and len(reveal["attack_explanation"]) > 80
    assert reveal["query_budget"] == 500
    assert 1 <= reveal["queries"] <= reveal["query_budget"]
    assert reveal["linf"] <= round_["eps"] + 1e-9
    again = client.get(f"/api/v1/rounds/{round_['round_id']}", headers=auth(player)).json()
    assert again["queries"] == reveal["queries"], "the count is stored with the round, not recomputed"


def test_an_l2_round_gets_an_l2_budget_and_stays_inside_it_after_rounding(client: TestClient) -> None:
    player = new_player(client)
    round_, reveal = play(client, player, attack="pgd-l2")
    assert round_["norm"] == "l2" and round_["eps_text"].startswith("L2 size")
    assert round_["eps"] > 0.2, "an L2 radius, not a grey level"
    assert 0 < reveal["l2"] <= round_["eps"] + 1e-9
    assert reveal["queries"] is None, "white-box attacks do not count queries"


def test_unknown_or_impossible_choices_are_refused_with_the_valid_names(client: TestClient) -> None:
    player = new_player(client)
    bad_attack = client.post("/api/v1/rounds", headers=auth(player), json={"attack": "laser"})
    assert bad_attack.status_code == 422
    assert "laser" in bad_attack.json()["detail"] and "pgd" in bad_attack.json()["detail"]
    bad_opponent = client.post("/api/v1/rounds", headers=auth(player), json={"opponent": "hal-9000"})
    assert bad_opponent.status_code == 422 and "fashion-cnn" in bad_opponent.json()["detail"]
    extra = client.post("/api/v1/rounds", headers=auth(player), json={"attack": "pgd", "eps": 1.0})
    assert extra.status_code == 422, "the budget is the game's to set"
    no_round = client.get("/api/v1/leaderboard").json()
    assert no_round == [] or all(entry["rounds"] == 0 for entry in no_round)


def test_event_players_cannot_pick_their_own_attack(client: TestClient) -> None:
    event = new_event(client)
    joined = new_player(client, "guest", event["code"])
    refused = client.post("/api/v1/rounds", headers=auth(joined), json={"attack": "fgsm"})
    assert refused.status_code == 422 and "host" in refused.json()["detail"]


def test_opponents_list_their_cards_and_playable_attacks(client: TestClient) -> None:
    response = client.get("/api/v1/opponents")
    assert response.status_code == 200
    opponents = {o["name"]: o for o in response.json()}
    cnn = opponents["fashion-cnn"]
    assert cnn["default"] is True and cnn["differentiable"] is True and cnn["pack"] == "fashion"
    assert 0.9 < cnn["clean_accuracy"] < 1 and cnn["min_eps"] > 0
    assert {"pgd", "square", "hopskipjump"} <= set(cnn["attacks"])
    assert cnn["card"]["robustness"] and "FashionCNN" in cnn["architecture"]
    for opponent in opponents.values():
        if not opponent["differentiable"]:
            assert "pgd" not in opponent["attacks"] and opponent["attacks"], opponent["name"]


def test_an_event_with_a_condition_mix_records_the_condition_of_each_round(client: TestClient) -> None:
    bad = client.post("/api/v1/events", json={"name": "Lab", "eps": 8 / 255, "conditions": {"laser": 1}})
    assert bad.status_code == 422 and "adversarial=0.6" in bad.json()["detail"]
    event = client.post("/api/v1/events", json={"name": "Lab", "eps": 8 / 255, "conditions": "clean=1"}).json()
    start_event(client, event)
    guest = new_player(client, "subject", event["code"])
    round_, reveal = play(client, guest)
    assert reveal["condition"] == "clean" and reveal["linf"] == 0
    assert reveal["model_correct"], "a clean control shows the unperturbed image, which the model gets right"


def test_the_threshold_estimate_follows_the_players_own_answers(client: TestClient) -> None:

    player = new_player(client)
    assert client.get("/api/v1/players/me/threshold", headers=auth(player)).json() == []
    assert client.get("/api/v1/players/me/threshold").status_code == 401
    trials = []
    for turn in range(8):
        created = new_round(client, player)
        # alternate a likely-right guess (the true class is unknown before answering) with a likely-wrong one
        choice = created["choices"][turn % 10]
        reveal = client.post(created["answer_url"], headers=auth(player), json={"choice": choice}).json()
        trials.append((created["eps"], reveal["correct"]))
    [found] = client.get("/api/v1/players/me/threshold", headers=auth(player)).json()
    expected = threshold.estimate("fashion-cnn", trials, model_eps=found["model_eps"])
    assert found["rounds"] == 8 and found["reversals"] == expected.reversals
    assert found["eps"] == (pytest.approx(expected.eps) if expected.eps is not None else None)
    assert found["model_eps_text"] == "6/255", "the machine's 50% point is its card's min_eps"


def test_guess_the_machine_offers_its_answer_and_a_foil_and_scores_naming_it(client: TestClient) -> None:
    player = new_player(client)
    assert client.post("/api/v1/rounds", headers=auth(player), json={"task": "mind-reading"}).status_code == 422
    outcomes = []
    for turn in range(3):
        created = new_round(client, player, task="guess_machine")
        assert created["task"] == "guess_machine" and len(created["choices"]) == 2
        wrong_class = next(name for name in FASHION if name not in created["choices"])
        refused = client.post(created["answer_url"], headers=auth(player), json={"choice": wrong_class})
        assert refused.status_code == 422, "only the two offered labels can be chosen"
        pick = created["choices"][turn % 2]
        reveal = client.post(created["answer_url"], headers=auth(player), json={"choice": pick}).json()
        assert reveal["task"] == "guess_machine"
        assert reveal["model_label"] in created["choices"], "one of the two is the machine's answer"
        assert reveal["true_label"] in created["choices"], "the truth is always offered, fooled or not"
        assert reveal["correct"] == (pick == reveal["model_label"])
        assert reveal["points"] == (1 if reveal["correct"] else 0) or reveal["streak"] >= 3, "no beat-machine bonus"
        assert not reveal["beat_machine"]
        outcomes.append(reveal["correct"])
    assert client.get("/api/v1/players/me/threshold", headers=auth(player)).json() == [], "guesses are not seeing"
    agreement = client.get("/api/v1/stats/guess-machine").json()
    assert (agreement["n"], agreement["agreed"]) == (3, sum(outcomes))
    assert agreement["ci"][0] <= agreement["rate"] <= agreement["ci"][1]
    assert client.get("/api/v1/stats").json()["groups"] == [], "guesses are not counted as classification trials"
    assert client.get("/api/v1/tally").json()["answers"] == 0


def test_defended_opponents_get_the_attack_that_adapts_to_their_defense(client: TestClient) -> None:
    opponents = {o["name"]: o for o in client.get("/api/v1/opponents").json()}
    defended = [o for o in opponents.values() if o["card"].get("adaptive_attack")]
    if not defended:
        pytest.skip("no defended opponent is committed in models/")
    target = opponents.get("fashion-squeezed") or defended[0]
    adaptive = target["card"]["adaptive_attack"]
    player = new_player(client)
    created = client.post("/api/v1/rounds", headers=auth(player), json={"opponent": target["name"]})
    assert created.status_code == 201, created.text
    assert created.json()["attack"] == adaptive["attack"]
    assert "defense_verdict" not in created.json(), "what the defense did is part of the reveal, not the round"
    choice = {"choice": created.json()["choices"][0]}
    reveal = client.post(created.json()["answer_url"], headers=auth(player), json=choice).json()
    assert reveal.get("defense_verdict") in {"rejected", "reformed", "certified", "withstood", "fooled"}, reveal
    assert reveal["defense_text"], "the reveal says what the defense did"
    assert (reveal["defense_verdict"] == "fooled") == (not reveal["model_correct"]) or reveal[
        "defense_verdict"
    ] == "rejected", "only a rejection can come with a wrong answer, and fooled means a wrong answer"
    plain = new_round(client, player, opponent="fashion-cnn")
    plain_reveal = client.post(plain["answer_url"], headers=auth(player), json={"choice": plain["choices"][0]}).json()
    assert plain_reveal["defense_verdict"] is None and plain_reveal["defense_text"] == ""


def test_the_certified_opponent_is_listed_and_attacked_with_pgd(client: TestClient) -> None:
    opponents = {o["name"]: o for o in client.get("/api/v1/opponents").json()}
    certified = opponents["fashion-certified"]
    assert certified["card"]["adaptive_attack"]["attack"] == "pgd"
    assert certified["card"]["certified"]["n"] >= 1000
    player = new_player(client)
    round_, reveal = play(client, player, opponent="fashion-certified")
    assert (round_["opponent"], round_["attack"]) == ("fashion-certified", "pgd")
    assert reveal["linf"] <= round_["eps"] + 1e-9

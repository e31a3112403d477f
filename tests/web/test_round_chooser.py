"""The play page's opponent and attack chooser (no JavaScript needed) and the attack note in the reveal."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.helpers import web_join
from tests.web.test_pages import ROUND_LINK

FIRST_CHOICE = re.compile(r'name="choice" value="([^"]+)"')


def answer_first_choice(client: TestClient, round_url: str, token: str) -> str:
    question = client.get(round_url).text
    choice = FIRST_CHOICE.search(question).group(1)
    round_id = ROUND_LINK.search(round_url).group(1)
    answered = client.post(
        f"/play/rounds/{round_id}/answer", data={"csrf_token": token, "choice": choice}, follow_redirects=True
    )
    assert answered.status_code == 200
    return answered.text


def test_the_chooser_picks_the_attack_and_remembers_it(client: TestClient) -> None:
    token = web_join(client)
    page = client.get("/play").text
    assert 'name="opponent"' in page and 'name="attack"' in page
    assert '<option value="hopskipjump"' in page and "sees only the model&#39;s top answer" in page
    created = client.post(
        "/play/rounds",
        data={"csrf_token": token, "opponent": "fashion-cnn", "attack": "hopskipjump"},
        follow_redirects=False,
    )
    assert created.status_code == 303
    question = client.get(created.headers["location"]).text
    assert "attack <strong>hopskipjump</strong>" in question and "L2 size" in question
    reveal = answer_first_choice(client, created.headers["location"], token)
    assert "How the machine was attacked" in reveal
    assert re.search(r"It asked the machine <strong>\d+</strong> questions? \(of 500 allowed\)", reveal)
    # The next round, asked for without the chooser, keeps the choice (kept in the session cookie).
    again = client.post("/play/rounds", data={"csrf_token": token}, follow_redirects=False)
    assert "attack <strong>hopskipjump</strong>" in client.get(again.headers["location"]).text


def test_an_impossible_choice_gets_a_clear_error_page(client: TestClient) -> None:
    token = web_join(client)
    refused = client.post("/play/rounds", data={"csrf_token": token, "opponent": "fashion-cnn", "attack": "death-ray"})
    assert refused.status_code == 422
    assert "death-ray" in refused.text and "choose one of" in refused.text
    # The refused choice is not remembered: the next round plays the defaults.
    again = client.post("/play/rounds", data={"csrf_token": token}, follow_redirects=False)
    assert again.status_code == 303 and "attack <strong>pgd</strong>" in client.get(again.headers["location"]).text


def test_the_reveal_shows_the_players_threshold_beside_the_machines(client: TestClient) -> None:
    token = web_join(client)
    created = client.post("/play/rounds", data={"csrf_token": token}, follow_redirects=False)
    reveal = answer_first_choice(client, created.headers["location"], token)
    assert "Your threshold appears after a few more rounds" in reveal and "6/255" in reveal


def test_guess_the_machine_from_the_chooser_shows_two_labels(client: TestClient) -> None:
    token = web_join(client)
    created = client.post(
        "/play/rounds",
        data={"csrf_token": token, "opponent": "fashion-cnn", "attack": "", "task": "guess_machine"},
        follow_redirects=False,
    )
    question = client.get(created.headers["location"]).text
    assert "Which of these did <strong>the machine</strong> answer?" in question
    assert len(FIRST_CHOICE.findall(question)) == 2
    reveal = answer_first_choice(client, created.headers["location"], token)
    assert "You guessed it said" in reveal
    refused = client.post("/play/rounds", data={"csrf_token": token, "opponent": "fashion-cnn", "task": "telepathy"})
    assert refused.status_code == 422 and "classify, guess_machine" in refused.text


def test_the_reveal_links_to_the_explain_page_which_renders(client: TestClient) -> None:
    token = web_join(client)
    created = client.post("/play/rounds", data={"csrf_token": token, "opponent": "fashion-cnn"}, follow_redirects=False)
    reveal = answer_first_choice(client, created.headers["location"], token)
    link = re.search(r'href="(/play/rounds/[^"]+/explain)"', reveal)
    assert link, "the reveal links to the explain page"
    page = client.get(link.group(1))
    assert page.status_code == 200 and "map around the image" in page.text


def test_the_reveal_says_what_the_defense_did(client: TestClient) -> None:
    token = web_join(client)
    created = client.post(
        "/play/rounds", data={"csrf_token": token, "opponent": "fashion-squeezed"}, follow_redirects=False
    )
    assert created.status_code == 303
    reveal = answer_first_choice(client, created.headers["location"], token)
    assert "What the defense did:" in reveal
    assert re.search(r'class="defense-verdict verdict-(rejected|reformed|withstood|fooled)"', reveal)
    plain = client.post("/play/rounds", data={"csrf_token": token, "opponent": "fashion-cnn"}, follow_redirects=False)
    assert "What the defense did:" not in answer_first_choice(client, plain.headers["location"], token)

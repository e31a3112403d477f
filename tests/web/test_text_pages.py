"""The text play page (issue #18) without JavaScript and with htmx, on both backends and the real model service:
the question shows only the shown text; the reveal shows the original with the changed words marked, both answers
and the machine's confidence; every piece of text is escaped."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from app.game.text_play import Piece, TextReveal
from tests.helpers import csrf_from, web_join

TEXT_ROUND = re.compile(r"/play/text/rounds/([0-9a-f]{32})")


def test_read_and_classify_without_javascript(client: TestClient) -> None:
    token = web_join(client)
    page = client.get("/play/text")
    assert page.status_code == 200 and "Start a text round" in page.text and "definitions-minilm" in page.text
    created = client.post(
        "/play/text/rounds",
        data={"csrf_token": token, "opponent": "definitions-tfidf", "attack": "textfooler"},
        follow_redirects=False,
    )
    assert created.status_code == 303
    url = created.headers["location"]
    round_id = TEXT_ROUND.search(url).group(1)
    question = client.get(url)
    assert question.status_code == 200 and 'id="shown-text"' in question.text
    assert question.text.count('name="choice"') == 8
    assert "Original" not in question.text and "Machine said" not in question.text and "<del" not in question.text
    # An unanswered text round is where both play pages take you back to.
    assert client.get("/play", follow_redirects=False).headers["location"].endswith(url)
    assert client.get("/play/text", follow_redirects=False).headers["location"].endswith(url)
    assert client.get(f"/play/rounds/{round_id}", follow_redirects=False).headers["location"].endswith(url)
    answered = client.post(
        f"/play/text/rounds/{round_id}/answer", data={"choice": "animal", "csrf_token": token}, follow_redirects=False
    )
    assert answered.status_code == 303
    reveal = client.get(url).text
    assert "Truth" in reveal and "Machine said" in reveal and "% sure" in reveal and 'id="original-text"' in reveal
    shown = re.search(r'id="shown-text-revealed">(.*?)</blockquote>', reveal, re.S).group(1)
    original = re.search(r'id="original-text">(.*?)</blockquote>', reveal, re.S).group(1)
    assert shown.count("<ins") == original.count("<del")
    assert re.sub(r"</?ins[^>]*>", "", shown) != re.sub(r"</?del[^>]*>", "", original) or "<ins" not in shown
    again = client.post(f"/play/text/rounds/{round_id}/answer", data={"choice": "plant", "csrf_token": token})
    assert again.status_code == 409


def test_htmx_gets_the_text_stage_fragment(client: TestClient) -> None:
    token = web_join(client)
    hx = {"HX-Request": "true"}
    fragment = client.post("/play/text/rounds", data={"csrf_token": token}, headers=hx)
    assert fragment.status_code == 200 and "<html" not in fragment.text and 'id="stage"' in fragment.text
    assert "HX-Request" in fragment.headers["vary"]
    round_id = TEXT_ROUND.search(fragment.text).group(1)
    reveal = client.post(
        f"/play/text/rounds/{round_id}/answer", data={"choice": "food", "csrf_token": token}, headers=hx
    )
    assert reveal.status_code == 200 and "<html" not in reveal.text and "Next text" in reveal.text
    assert csrf_from(reveal.text)


def test_the_reveal_escapes_every_piece_of_text(client: TestClient) -> None:
    hostile = "<script>alert(1)</script>"
    reveal = TextReveal(
        round_id="r" * 32,
        original=(Piece("a "), Piece(hostile, True)),
        shown=(Piece("a "), Piece("<img src=x onerror=alert(1)>", True)),
        true_label="<b>animal</b>",
        player_label="animal",
        model_label="plant",
        clean_label="animal",
        correct=True,
        model_correct=False,
        beat_machine=True,
        model_confidence=0.7,
        top3=(("plant", 0.7),),
        budget=0.25,
        words_changed=1,
        n_words=2,
        similarity=0.9,
        queries=12,
        points=3,
        opponent="definitions-tfidf",
        attack="textfooler",
        surrogate=None,
        condition="adversarial",
        condition_text="",
    )
    templates = client.app.state.templates  # type: ignore[attr-defined]
    body = templates.get_template("partials/text_reveal.html").render(reveal=reveal, detailed=True)
    assert "<script>" not in body and "<img" not in body and "<b>animal" not in body
    assert html.escape(hostile) in body and '<del class="changed">&lt;script&gt;' in body

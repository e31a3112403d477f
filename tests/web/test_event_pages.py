"""Workshop mode in HTML: host form and console, join by code, play, the big screen, the report and its charts."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from http.cookiejar import Cookie

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app import messages
from app.db.session import sync_url
from tests.helpers import csrf_from

HTML = {"Accept": "text/html"}
CODE = re.compile(r"/events/([A-Z0-9]{6})/host")
HOST_LINK = re.compile(r'value="([^"]+\?key=[^"]+)"')


def create_event(client: TestClient, **fields: str) -> str:
    form = client.get("/host")
    assert form.status_code == 200
    data = {
        "name": "Client workshop",
        "opponent": "fashion-cnn",
        "attack": "pgd",
        "eps_min": "4",
        "eps_max": "12",
        "style": "own_pace",
        "rounds": "5",
        "round_seconds": "20",
        "csrf_token": csrf_from(form.text),
        **fields,
    }
    created = client.post("/host", data=data, follow_redirects=False)
    assert created.status_code == 303, created.text
    match = CODE.search(created.headers["location"])
    assert match
    return match.group(1)


def swap_cookies(client: TestClient, jar: list[Cookie]) -> list[Cookie]:
    """Be someone else on the same client: the host, then a player, then the host again."""
    old = list(client.cookies.jar)
    client.cookies.clear()
    for cookie in jar:
        client.cookies.jar.set_cookie(cookie)
    return old


def join_event(client: TestClient, code: str, nickname: str) -> None:
    page = client.get(f"/join/{code}")
    assert page.status_code == 200 and f'value="{code}"' in page.text
    joined = client.post(
        "/join/event",
        data={"code": code.lower(), "nickname": nickname, "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert joined.status_code == 303 and joined.headers["location"].endswith(f"/events/{code}/play")


def host_post(client: TestClient, code: str, action: str) -> None:
    console = client.get(f"/events/{code}/host")
    response = client.post(
        f"/events/{code}/host/{action}", data={"csrf_token": csrf_from(console.text)}, follow_redirects=False
    )
    assert response.status_code == 303, response.text


def test_host_form_lists_what_the_server_can_run_and_explains_mistakes(client: TestClient) -> None:
    form = client.get("/host")
    assert '<option value="fashion-cnn"' in form.text
    assert '<option value="pgd"' in form.text and '<option value="fgsm"' in form.text
    bad = client.post(
        "/host",
        data={
            "name": "x",
            "opponent": "fashion-cnn",
            "attack": "pgd",
            "eps_min": "20",
            "eps_max": "4",
            "csrf_token": csrf_from(form.text),
        },
    )
    assert bad.status_code == 422 and messages.EVENT_EPS_INVALID in html.unescape(bad.text)
    assert 'value="x"' in bad.text, "the form keeps what the host typed"
    refused = client.post("/host", data={"name": "x", "csrf_token": "forged"}, headers=HTML)
    assert refused.status_code == 403


def test_host_console_needs_the_host_cookie_or_the_secret_link(client: TestClient) -> None:
    code = create_event(client)
    console = client.get(f"/events/{code}/host")
    assert console.status_code == 200
    assert code in console.text and f"/events/{code}/qr.svg" in console.text and f"/join/{code}" in console.text
    host_link = html.unescape(HOST_LINK.search(console.text).group(1))  # type: ignore[union-attr]
    host_jar = swap_cookies(client, [])
    stranger = client.get(f"/events/{code}/host", headers=HTML)
    assert stranger.status_code == 403 and messages.HOST_LINK_REQUIRED in html.unescape(stranger.text)
    page = client.get("/")
    forged = client.post(f"/events/{code}/host/start", data={"csrf_token": csrf_from(page.text)}, headers=HTML)
    assert forged.status_code == 403, "a stranger with a valid form token still is not the host"
    wrong = client.get(f"/events/{code}/host?key=guess", headers=HTML)
    assert wrong.status_code == 403 and messages.HOST_TOKEN_INVALID in html.unescape(wrong.text)
    opened = client.get(host_link.replace("http://testserver", ""), follow_redirects=False)
    assert opened.status_code == 303 and "key=" not in opened.headers["location"]
    assert client.get(f"/events/{code}/host").status_code == 200, "the secret link works on a second device"
    swap_cookies(client, host_jar)


def test_join_errors_are_explained(client: TestClient) -> None:
    code = create_event(client)
    page = client.get("/join")
    unknown = client.post("/join/event", data={"code": "ZZZZZZ", "nickname": "Ann", "csrf_token": csrf_from(page.text)})
    assert unknown.status_code == 404 and messages.EVENT_NOT_FOUND in html.unescape(unknown.text)
    assert client.get("/join/ZZ", headers=HTML).status_code == 404
    host_jar = swap_cookies(client, [])
    join_event(client, code, "Ann")
    swap_cookies(client, [])
    page = client.get(f"/join/{code}")
    taken = client.post("/join/event", data={"code": code, "nickname": "ANN", "csrf_token": csrf_from(page.text)})
    assert taken.status_code == 409 and messages.NICKNAME_TAKEN in html.unescape(taken.text)
    swap_cookies(client, host_jar)
    host_post(client, code, "end")
    swap_cookies(client, [])
    page = client.get(f"/join/{code}")
    ended = client.post("/join/event", data={"code": code, "nickname": "Cy", "csrf_token": csrf_from(page.text)})
    assert ended.status_code == 409 and messages.EVENT_ENDED in html.unescape(ended.text)


def test_a_whole_own_pace_session_in_html(client: TestClient) -> None:
    code = create_event(client)
    host_jar = swap_cookies(client, [])
    join_event(client, code, "Ada")
    lobby = client.get(f"/events/{code}/play")
    assert "Waiting for the host" in lobby.text
    assert f'sse-connect="/events/{code}/stream?role=player"' in lobby.text
    assert "htmx-ext-sse-2.2.4.min.js" in lobby.text
    assert client.get("/play", follow_redirects=False).headers["location"].endswith(f"/events/{code}/play")
    ada_jar = swap_cookies(client, host_jar)
    host_post(client, code, "start")
    swap_cookies(client, ada_jar)

    token = csrf_from(lobby.text)
    created = client.post(f"/events/{code}/play/rounds", data={"csrf_token": token}, follow_redirects=False)
    assert created.status_code == 303
    question = client.get(f"/events/{code}/play")
    round_id = re.search(r'data-round-id="([^"]+)"', question.text).group(1)  # type: ignore[union-attr]
    assert "Machine said" not in question.text
    hx = {"HX-Request": "true"}
    reveal = client.post(
        f"/events/{code}/play/rounds/{round_id}/answer", data={"choice": "Coat", "csrf_token": token}, headers=hx
    )
    assert reveal.status_code == 200 and "<html" not in reveal.text
    assert "Machine said" in reveal.text and "Coat" in reveal.text and "Next round" in reveal.text
    again = client.post(f"/events/{code}/play/rounds/{round_id}/answer", data={"choice": "Bag", "csrf_token": token})
    assert messages.ROUND_ALREADY_ANSWERED in html.unescape(again.text)

    screen = client.get(f"/events/{code}/screen")
    assert screen.status_code == 200 and 'data-answers="1"' in screen.text and "Ada" in screen.text
    assert f'sse-connect="/events/{code}/stream?role=screen"' in screen.text
    for name in ("status", "tally", "eps", "board", "moments"):
        assert f'sse-swap="{name}"' in screen.text
    report = client.get(f"/events/{code}/report")
    assert report.status_code == 200 and "Ada" in report.text and "95% interval" in report.text
    assert f"/api/v1/events/{code}/answers.csv?download=1" in report.text
    board = client.get(f"/leaderboard?event={code}")
    assert "Ada" in board.text


def test_charts_are_real_png_and_svg_and_the_qr_code_is_local(client: TestClient) -> None:
    code = create_event(client)
    for chart in ("accuracy-by-eps", "confusions"):
        png = client.get(f"/events/{code}/charts/{chart}.png")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
        svg = client.get(f"/events/{code}/charts/{chart}.svg")
        assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content[:2000]
        assert "attachment" in svg.headers["content-disposition"]
    assert client.get(f"/events/{code}/charts/pie.png").status_code == 404
    assert client.get(f"/events/{code}/charts/confusions.gif").status_code == 404
    qr = client.get(f"/events/{code}/qr.svg")
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in qr.content and b"<path" in qr.content
    assert b'xmlns="http://www.w3.org/2000/svg"' in qr.content, "a standalone SVG, or <img> shows nothing"


def test_a_together_image_on_the_phone_and_the_screen(client: TestClient) -> None:
    code = create_event(client, style="together", rounds="2", round_seconds="30")
    host_jar = swap_cookies(client, [])
    join_event(client, code, "Ada")
    waiting = client.get(f"/events/{code}/play")
    assert "Waiting for the host" in waiting.text
    ada_jar = swap_cookies(client, host_jar)
    host_post(client, code, "start")
    console = client.get(f"/events/{code}/host")
    assert "Show the first image" in console.text
    host_post(client, code, "next-image")
    assert "Image 1 is open" in client.get(f"/events/{code}/host").text
    screen = client.get(f"/events/{code}/screen")
    assert f"/events/{code}/shared/1/adversarial.png" in screen.text and "data-countdown-to" in screen.text
    assert client.get(f"/events/{code}/shared/1/original.png").status_code == 404, "no truth before the end"
    swap_cookies(client, ada_jar)

    question = client.get(f"/events/{code}/play")
    assert "data-countdown-to" in question.text
    round_id = re.search(r'data-round-id="([^"]+)"', question.text).group(1)  # type: ignore[union-attr]
    token = csrf_from(question.text)
    locked = client.post(
        f"/events/{code}/play/rounds/{round_id}/answer",
        data={"choice": "Coat", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert "Answer locked in: Coat" in locked.text and "Machine said" not in locked.text, "no reveal while open"
    assert "· 0 pts" in locked.text, "points for an image still counting down are not shown yet"

    engine = create_engine(sync_url(client.app.state.settings.database_url))
    with engine.begin() as conn:
        conn.execute(text("UPDATE shared_rounds SET closes_at = :t"), {"t": datetime.now(UTC) - timedelta(seconds=2)})
    engine.dispose()
    reveal = client.get(f"/events/{code}/play")
    assert "Machine said" in reveal.text and "Coat" in reveal.text
    screen = client.get(f"/events/{code}/screen")
    assert "the room vs the machine" in screen.text and "Truth:" in screen.text
    # The row may carry "(truth)" / "(machine)" tags when Coat is also the truth or the machine's answer.
    coat_row = r"<th>Coat(?:[^<]|<small>[^<]*</small>)*</th>\s*<td><meter min=\"0\" max=\"1\" value=\"1\">"
    assert re.search(coat_row, screen.text)
    assert client.get(f"/events/{code}/shared/1/original.png").headers["content-type"] == "image/png"
    report = client.get(f"/events/{code}/report")
    assert "Every shared image" in report.text

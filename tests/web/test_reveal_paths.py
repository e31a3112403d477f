"""The reveal rule on every path: while a together image counts down, a player who has answered it finds no truth,
no machine answer, no correctness and no pending points on any route of the app; once it reveals, they do.

The walk is drawn up from ``app.routes``: every route is either walked or named with the reason it cannot show a
round (``NO_ROUND_DATA``), so a new route fails this test until someone says which it is."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app.db.session import sync_url
from app.stats.plots.explain import EXPLAIN_KINDS
from tests.helpers import csrf_from, host_auth, new_event
from tests.web.events.builders import enter_host_key, join_event_in_html

# Words and fields only a reveal, a count of settled answers or a score carries.
MARKERS = (
    "Machine said",
    "machine said",
    "Truth",
    'class="truth',
    "original.png",
    "perturbation.png",
    "beat the machine",
    "You were both right",
    "Right!",
    "pts",
    "true_label",
    "model_label",
    "model_correct",
    "model_top3",
    "correct",
    "points",
    "Ada",
)

NO_ROUND_DATA = {
    ("GET", "/api/openapi.json"): "the API's schema",
    ("GET", "/api/docs"): "the API's documentation page",
    ("GET", "/healthz"): "the model service's and the database's health",
    ("GET", "/livez"): "the process answers",
    ("GET", "/readyz"): "the database and the model service are reachable",
    ("", "/static"): "static files",
    ("POST", "/api/v1/players"): "creates a player",
    ("GET", "/api/v1/attacks"): "the attack catalogue",
    ("GET", "/api/v1/opponents"): "the opponents' model cards",
    ("POST", "/api/v1/events"): "creates an event",
    ("POST", "/api/v1/events/{code}/{action:host_action}"): "host actions reply with the event state GET walks",
    ("DELETE", "/api/v1/events/{code}/players/{player_id}"): "replies with a player as the players list walked",
    ("POST", "/join"): "creates a player outside the event",
    ("POST", "/leave"): "forgets the cookie's player",
    ("POST", "/host"): "creates an event",
    ("POST", "/events/{code}/host"): "the host key: redirects to the console walked",
    ("POST", "/events/{code}/host/{action}"): "host actions redirect to the console walked",
    ("POST", "/events/{code}/host/players/{player_id}/remove"): "redirects to the console walked",
    ("POST", "/join/event"): "creates a player",
    ("GET", "/events/{code}/qr.svg"): "the join link's QR code",
    ("POST", "/api/v1/cloak"): "the photo cloak: the visitor's own upload, no round",
    ("POST", "/api/v1/classify"): "the photo cloak's classifier",
    ("GET", "/cloak"): "the photo cloak",
    ("POST", "/cloak"): "the photo cloak",
    ("GET", "/cloak/r/{token}"): "a cloak result (its own token, no round)",
    ("GET", "/cloak/r/{token}/{name}.png"): "a cloak result's image",
    ("POST", "/cloak/r/{token}/delete"): "deletes a cloak result",
    ("GET", "/cloak/jobs/{token}/events"): "a cloak job's progress",
    ("POST", "/natural/rounds"): "natural-image rounds: a token of their own, never an event's",
    ("GET", "/natural/r/{token}"): "a natural-image round",
    ("POST", "/natural/r/{token}/answer"): "a natural-image round",
    ("GET", "/natural/r/{token}/{kind}.png"): "a natural-image round's image",
    ("GET", "/lab/defenses/{name}/curves.{fmt}"): "model cards' robustness curves",
    ("GET", "/api/v1/text/opponents"): "the text opponents' cards",
    # Fool the machine yourself (issue #18): human-written texts and their validations are not rounds; a validation
    # withholds its truth by app/game/disclosure.py validation_truth_hidden (tests/game/fool_text)
    ("GET", "/fool/text/{edit_id}"): "the player's own edit of a definition",
    ("GET", "/api/v1/fool/text/rounds/{edit_id}"): "the player's own edit of a definition",
    ("POST", "/fool/text/rounds"): "starts an edit: redirects to it",
    ("POST", "/api/v1/fool/text/rounds"): "starts an edit",
    ("POST", "/fool/text/{edit_id}/check"): "the opponent's answer on the player's own edit",
    ("POST", "/api/v1/fool/text/rounds/{edit_id}/check"): "the opponent's answer on the player's own edit",
    ("POST", "/fool/text/{edit_id}/submit"): "submits the player's own edit",
    ("POST", "/api/v1/fool/text/rounds/{edit_id}/submit"): "submits the player's own edit",
    ("POST", "/fool/text/validations"): "starts a validation of someone's text: redirects to it",
    ("POST", "/api/v1/fool/text/validations"): "starts a validation of someone's text",
    ("GET", "/fool/text/validations/{validation_id}"): "a validation: its truth only once answered",
    ("GET", "/api/v1/fool/text/validations/{validation_id}"): "a validation: its truth only once answered",
    ("POST", "/fool/text/validations/{validation_id}/answer"): "answers a validation",
    ("POST", "/api/v1/fool/text/validations/{validation_id}/answer"): "answers a validation",
    # Pick the moments (issue #19): CartPole episodes, no image round; the heuristic stays hidden until played
    # (tests/game/test_policy.py)
    ("GET", "/lab/policy"): "the lab's clean and attacked episodes (runs them in the model service)",
    ("GET", "/api/v1/policy/episodes"): "one CartPole episode",
    ("GET", "/lab/policy/plot.{fmt}"): "the committed plot of the agent's card",
    ("GET", "/lab/policy/rounds/{round_id}"): "the player's own pick-the-moments round",
    ("GET", "/api/v1/policy/rounds/{round_id}"): "the player's own pick-the-moments round",
    ("POST", "/lab/policy/rounds"): "starts a pick-the-moments round: redirects to it",
    ("POST", "/api/v1/policy/rounds"): "starts a pick-the-moments round",
    ("POST", "/lab/policy/rounds/{round_id}/picks"): "plays the player's own round",
    ("POST", "/api/v1/policy/rounds/{round_id}/picks"): "plays the player's own round",
    # Fool it by hand (issue #21): paintings are not rounds; the pages and lists that count answers are walked.
    ("POST", "/paint"): "starts a painting: redirects to its board",
    ("GET", "/paint/{painting_id}"): "the player's own painting (a clean test image and their edits)",
    ("POST", "/paint/see"): "redirects to a round whose page is walked",
    ("POST", "/api/v1/paint"): "starts a painting",
    ("GET", "/api/v1/paint/{painting_id}"): "the player's own painting",
    ("POST", "/api/v1/paint/{painting_id}/strokes"): "the opponent's answer on the player's own painting",
    ("POST", "/api/v1/paint/{painting_id}/give-up"): "ends the player's own painting",
    ("GET", "/api/v1/paint/{painting_id}/{kind}.png"): "a painting's images",
    ("POST", "/api/v1/paint-rounds"): "replies with a round id only",
    ("GET", "/events/{code}/paint-stream"): "the room's paintings, as the paint screen walked",
}


def app_routes(client: TestClient) -> set[tuple[str, str]]:
    """Every (method, path) the app serves, routers included."""
    found: set[tuple[str, str]] = set()
    for route in client.app.routes:
        contexts = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]
        for context in contexts:
            methods = set(getattr(context, "methods", None) or {""}) - {"HEAD"}
            found.update((method, context.path) for method in methods)
    return found


def run_sql(client: TestClient, statement: str, **params: object) -> list[Any]:
    engine = create_engine(sync_url(client.app.state.settings.database_url))
    with engine.begin() as conn:
        result = conn.execute(text(statement), params)
        rows = list(result) if result.returns_rows else []
    engine.dispose()
    return rows


def first_snapshot(client: TestClient, path: str, last_event: bytes) -> str:
    """The first snapshot an SSE stream sends, read straight through ASGI (the test client would wait for the end of
    a stream that never ends), then a disconnect."""
    body: list[bytes] = []

    async def read() -> None:
        seen = anyio.Event()
        asked = False

        async def receive() -> dict[str, Any]:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await seen.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if f"event: {last_event.decode()}".encode() in b"".join(body):
                    seen.set()

        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 5000),
            "root_path": "",
            "path": path.split("?")[0],
            "raw_path": path.split("?")[0].encode(),
            "query_string": path.partition("?")[2].encode(),
            "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode()), (b"accept", b"text/event-stream")],
        }
        with anyio.fail_after(10):
            await client.app(scope, receive, send)

    assert client.portal is not None
    client.portal.call(read)
    return b"".join(body).decode()


class Walk:
    """Requests every path that can show a round, as the player Ada (cookie) and the event's host (token)."""

    def __init__(self, client: TestClient, code: str, host: dict[str, str], round_id: str) -> None:
        self.client, self.code, self.host, self.round_id = client, code, host, round_id
        self.walked: set[tuple[str, str]] = set()

    def get(self, route: str, url: str, **kwargs: Any) -> httpx.Response:
        self.walked.add(("GET", route))
        return self.client.get(url, follow_redirects=False, **kwargs)

    def pages(self) -> dict[str, str]:
        """Every GET that can show a round, answer, score or count, by URL: what each says now."""
        code, rid = self.code, self.round_id
        host = host_auth(self.host)
        seen: dict[str, str] = {}
        gets: list[tuple[str, str, dict[str, Any]]] = [
            ("/", "/", {}),
            ("/play", "/play", {}),
            ("/play/rounds/{round_id}", f"/play/rounds/{rid}", {}),
            ("/play/rounds/{round_id}/explain", f"/play/rounds/{rid}/explain", {}),
            ("/leaderboard", "/leaderboard", {}),
            ("/leaderboard", f"/leaderboard?event={code}", {}),
            ("/about", "/about", {}),
            ("/stats", "/stats", {}),
            ("/stats", f"/stats?event={code}", {}),
            ("/lab/transfer", "/lab/transfer", {}),
            ("/lab/defenses", "/lab/defenses", {}),
            ("/natural", "/natural", {}),
            ("/host", "/host", {}),
            ("/join", "/join", {}),
            ("/join/{code}", f"/join/{code}", {}),
            ("/events/{code}/play", f"/events/{code}/play", {}),
            ("/events/{code}/play/stage", f"/events/{code}/play/stage", {}),
            ("/events/{code}/screen", f"/events/{code}/screen", {}),
            ("/events/{code}/report", f"/events/{code}/report", {}),
            ("/events/{code}/host", f"/events/{code}/host", {}),
            ("/api/v1/rounds/{round_id}", f"/api/v1/rounds/{rid}", {}),
            ("/api/v1/rounds/{round_id}/explain", f"/api/v1/rounds/{rid}/explain", {}),
            ("/api/v1/players/me/threshold", "/api/v1/players/me/threshold", {}),
            ("/api/v1/leaderboard", "/api/v1/leaderboard", {}),
            ("/api/v1/leaderboard", f"/api/v1/leaderboard?event={code}", {}),
            ("/api/v1/tally", "/api/v1/tally", {}),
            ("/api/v1/tally", f"/api/v1/tally?event={code}", {}),
            ("/api/v1/export/answers.{fmt}", "/api/v1/export/answers.csv", {}),
            ("/api/v1/export/answers.{fmt}", "/api/v1/export/answers.jsonl", {}),
            ("/api/v1/events/{code}", f"/api/v1/events/{code}", {}),
            ("/api/v1/events/{code}/players", f"/api/v1/events/{code}/players", {"headers": host}),
            ("/api/v1/events/{code}/stats", f"/api/v1/events/{code}/stats", {}),
            ("/api/v1/events/{code}/answers.{fmt}", f"/api/v1/events/{code}/answers.csv", {"headers": host}),
            ("/api/v1/stats", "/api/v1/stats", {}),
            ("/api/v1/stats", f"/api/v1/stats?event={code}", {}),
            ("/api/v1/stats/guess-machine", "/api/v1/stats/guess-machine", {}),
            # text rounds (issue #18): asked about this image round they refuse it; their tables count settled only
            ("/play/text", "/play/text", {}),
            ("/play/text/rounds/{round_id}", f"/play/text/rounds/{rid}", {}),
            ("/api/v1/text/rounds/{round_id}", f"/api/v1/text/rounds/{rid}", {}),
            ("/api/v1/stats/text", "/api/v1/stats/text", {}),
            ("/stats/text", "/stats/text", {}),
            # fool the machine yourself and pick the moments (issues #18, #19): their own records, not rounds; the
            # pages carry the header score and the lists count answers, so they are walked
            ("/fool/text", "/fool/text", {}),
            ("/fool/text/validate", "/fool/text/validate", {}),
            ("/api/v1/exports/human-texts", "/api/v1/exports/human-texts", {}),
            ("/lab/policy/play", "/lab/policy/play", {}),
            ("/api/v1/policy/leaderboard", "/api/v1/policy/leaderboard", {}),
            ("/api/v1/policy/stats", "/api/v1/policy/stats", {}),
            ("/api/v1/export/policy_rounds.{fmt}", "/api/v1/export/policy_rounds.csv", {}),
            ("/paint", "/paint", {}),
            ("/paint/leaderboard", "/paint/leaderboard", {}),
            ("/events/{code}/paint-screen", f"/events/{code}/paint-screen", {}),
            ("/api/v1/paint-leaderboard", "/api/v1/paint-leaderboard", {}),
            ("/api/v1/stats/painted", "/api/v1/stats/painted", {}),
            ("/api/v1/paint-export", "/api/v1/paint-export", {}),
        ]
        for route, url, kwargs in gets:
            seen[url] = self.get(route, url, **kwargs).text
        for kind in ("adversarial", "original", "perturbation"):
            for route, url in (
                ("/rounds/{round_id}/{kind}.png", f"/rounds/{rid}/{kind}.png"),
                ("/events/{code}/shared/{number}/{kind}.png", f"/events/{code}/shared/1/{kind}.png"),
            ):
                seen[url] = str(self.get(route, url).status_code)
        for kind in EXPLAIN_KINDS[:1]:
            url = f"/play/rounds/{rid}/explain/{kind}.svg"
            seen[url] = str(self.get("/play/rounds/{round_id}/explain/{kind}.{fmt}", url).status_code)
        for url in (f"/events/{code}/charts/accuracy-by-eps.svg", f"/events/{code}/charts/confusions.svg"):
            seen[url] = chart_text(self.get("/events/{code}/charts/{chart}.{fmt}", url).text)
        seen["/stats/chart.svg"] = chart_text(self.get("/stats/chart.{fmt}", "/stats/chart.svg").text)
        for role, last in (("screen", b"moments"), ("player", b"status")):
            self.walked.add(("GET", "/events/{code}/stream"))
            seen[f"stream:{role}"] = first_snapshot(self.client, f"/events/{code}/stream?role={role}", last)
        return seen

    def posts(self, csrf: str) -> dict[str, httpx.Response]:
        """Every POST a player can send again about the round, or to be given one (nothing new once answered)."""
        code, rid = self.code, self.round_id
        hx = {"HX-Request": "true"}
        again = {"choice": "Coat", "csrf_token": csrf}
        sent = {
            "/play/rounds/{round_id}/answer": [
                self.client.post(f"/play/rounds/{rid}/answer", data=again, headers=hx),
                self.client.post(f"/play/rounds/{rid}/answer", data=again),
            ],
            "/events/{code}/play/rounds/{round_id}/answer": [
                self.client.post(f"/events/{code}/play/rounds/{rid}/answer", data=again, headers=hx),
                self.client.post(f"/events/{code}/play/rounds/{rid}/answer", data=again),
            ],
            "/events/{code}/play/rounds": [
                self.client.post(f"/events/{code}/play/rounds", data={"csrf_token": csrf}, headers=hx),
                self.client.post(f"/events/{code}/play/rounds", data={"csrf_token": csrf}),
            ],
            "/play/rounds": [self.client.post("/play/rounds", data={"csrf_token": csrf}, follow_redirects=False)],
            "/api/v1/rounds/{round_id}/answer": [
                self.client.post(
                    f"/api/v1/rounds/{rid}/answer", json={"choice": "Coat"}, headers={"X-CSRF-Token": csrf}
                )
            ],
            "/api/v1/rounds": [self.client.post("/api/v1/rounds", headers={"X-CSRF-Token": csrf})],
            "/play/text/rounds/{round_id}/answer": [
                self.client.post(f"/play/text/rounds/{rid}/answer", data=again, headers=hx),
            ],
            "/play/text/rounds": [
                self.client.post("/play/text/rounds", data={"csrf_token": csrf}, follow_redirects=False)
            ],
            "/api/v1/text/rounds/{round_id}/answer": [
                self.client.post(
                    f"/api/v1/text/rounds/{rid}/answer", json={"choice": "Coat"}, headers={"X-CSRF-Token": csrf}
                )
            ],
            "/api/v1/text/rounds": [self.client.post("/api/v1/text/rounds", headers={"X-CSRF-Token": csrf})],
        }
        self.walked.update(("POST", route) for route in sent)
        return {f"{route}#{i}": reply for route, replies in sent.items() for i, reply in enumerate(replies)}


REVEAL_ONLY = ("Machine said", 'class="truth', "true_label", "model_label", "model_top3", "original.png")


def chart_text(svg: str) -> str:
    """A chart without matplotlib's drawing ids and date, which differ from one drawing of the same chart to the
    next: what is left is what it shows."""
    return re.sub(r'(id|xlink:href)="[^"]*"|url\(#[^)]*\)|<dc:date>.*?</dc:date>', "", svg, flags=re.S)


SCORES = re.compile(r'(\d+) pts|"score":\s*(\d+)|Score:? (\d+)|id="my-score">(\d+)<')


def scores_shown(page: str) -> set[int]:
    return {int(number) for match in SCORES.findall(page) for number in match if number}


def leaks(before: str, now: str) -> list[str]:
    return [marker for marker in MARKERS if now.count(marker) > before.count(marker)]


def test_no_path_shows_a_together_answer_before_the_image_reveals(client: TestClient) -> None:
    event = new_event(client, style="together", rounds=2, round_seconds=120)
    code = event["code"]
    client.post(f"/api/v1/events/{code}/start", headers=host_auth(event))
    join_event_in_html(client, code, "Ada")
    client.post(f"/api/v1/events/{code}/next-image", headers=host_auth(event))
    question = client.get(f"/events/{code}/play")
    round_id = re.search(r'data-round-id="([^"]+)"', question.text).group(1)  # type: ignore[union-attr]
    csrf = csrf_from(question.text)
    # Ada answers the truth, so the answer is right and earns points that must stay hidden.
    ((true_label, opponent),) = run_sql(client, "SELECT true_label, opponent FROM rounds WHERE id = :id", id=round_id)
    truth = client.app.state.model_service.opponent_info(opponent).class_names[true_label]
    # Host tokens in the console's cookie, for the console page.
    enter_host_key(client, code, event["host_token"])

    walk = Walk(client, code, event, round_id)
    before = walk.pages()
    answered = client.post(
        f"/events/{code}/play/rounds/{round_id}/answer",
        data={"choice": truth, "csrf_token": csrf},
        headers={"HX-Request": "true"},
    )
    assert f"Answer locked in: {truth}" in answered.text
    ((points,),) = run_sql(client, "SELECT points FROM answers WHERE round_id = :id", id=round_id)
    assert points > 0, "a right answer: points that must not show yet"

    during = walk.pages()
    charts = [url for url in during if "chart" in url]
    assert [url for url in charts if during[url] != before[url]] == [], "the charts draw no pending answer"
    found = {url: leaks(before[url], page) for url, page in during.items() if url not in charts}
    assert {url: words for url, words in found.items() if words} == {}, "nothing shows before the reveal"
    for url in (f"/rounds/{round_id}/original.png", f"/events/{code}/shared/1/perturbation.png"):
        assert during[url] == "404"
    assert {url: scores_shown(page) for url, page in during.items() if scores_shown(page) - {0}} == {}, "no points"
    assert "event: together" in during["stream:screen"] and "event: status" in during["stream:player"]
    assert 'id="my-score">0<' in during["/"] and "Score: 0." in during["/"]
    assert 'Ada</span> <span class="muted">0 pts' in during[f"/events/{code}/host"]
    for name, reply in walk.posts(csrf).items():
        shown = [marker for marker in (*REVEAL_ONLY, f"+{points} pts", f">{points}<") if marker in reply.text]
        assert shown == [], (name, reply.status_code, shown)

    covered = walk.walked | set(NO_ROUND_DATA)
    assert app_routes(client) - covered == set(), "every route is walked or said to show no round"

    # The image reveals: now the same paths show the truth, the machine's answer and the points.
    run_sql(client, "UPDATE shared_rounds SET closes_at = :t", t=datetime.now(UTC) - timedelta(seconds=2))
    after = walk.pages()
    shows: dict[str, Callable[[str], bool]] = {
        f"/play/rounds/{round_id}": lambda page: "Machine said" in page and f'id="my-score">{points}<' in page,
        f"/events/{code}/play": lambda page: "Machine said" in page and f"· {points} pts" in page,
        f"/events/{code}/screen": lambda page: "Truth:" in page,
        f"/events/{code}/host": lambda page: f'Ada</span> <span class="muted">{points} pts' in page,
        f"/api/v1/rounds/{round_id}": lambda page: '"true_label"' in page and f'"points":{points}' in page,
        f"/api/v1/events/{code}/players": lambda page: f'"score":{points}' in page,
        f"/api/v1/leaderboard?event={code}": lambda page: "Ada" in page,
        "/api/v1/export/answers.csv": lambda page: len(page.strip().splitlines()) == 2,
        f"/api/v1/events/{code}/stats": lambda page: '"answers":1' in page,
        f"/rounds/{round_id}/original.png": lambda page: page == "200",
        f"/events/{code}/shared/1/perturbation.png": lambda page: page == "200",
        "stream:screen": lambda page: "Truth:" in page,
    }
    assert [url for url, check in shows.items() if not check(after[url])] == [], "the reveal shows everywhere"

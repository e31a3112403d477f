"""A together image on the phones and the big screen: hidden truth while it counts down, the room's vote after."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app.db.session import sync_url
from tests.helpers import csrf_from
from tests.web.events.builders import host_event_in_html, join_event_in_html, press_host_button, swap_cookies


def test_a_together_image_on_the_phone_and_the_screen(client: TestClient) -> None:
    code = host_event_in_html(client, style="together", rounds="2", round_seconds="30")
    host_jar = swap_cookies(client, [])
    join_event_in_html(client, code, "Ada")
    waiting = client.get(f"/events/{code}/play")
    assert "Waiting for the host" in waiting.text
    ada_jar = swap_cookies(client, host_jar)
    press_host_button(client, code, "start")
    console = client.get(f"/events/{code}/host")
    assert "Show the first image" in console.text
    press_host_button(client, code, "next-image")
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

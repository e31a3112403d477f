"""/fool/text without JavaScript: start a round, check an edit (a whole page with the verdict), check it as htmx
does (only the verdict), submit it (303 to the result), then a second player reads it in a validation round."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.game.fool_text import texts
from tests.conftest import empty_tables
from tests.fool_text import FOOLING, TOOTH, fool_client
from tests.helpers import csrf_from, web_join


@pytest.fixture
def web(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(texts, "draw_indices", lambda n: [TOOTH])
    client, _service = fool_client(database_url)
    with client:
        yield client
    empty_tables(database_url)


def test_edit_check_submit_then_validate_without_javascript(web: Any) -> None:
    assert web.get("/fool/text", follow_redirects=False).headers["location"] == "/"  # join first
    csrf = web_join(web, "writer")
    page = web.get("/fool/text")
    assert page.status_code == 200 and 'action="/fool/text/rounds"' in page.text and 'href="/fool/text"' in page.text
    started = web.post("/fool/text/rounds", data={"csrf_token": csrf}, follow_redirects=False)
    assert started.status_code == 303
    round_url = started.headers["location"]
    edit_id = round_url.rsplit("/", 1)[1]
    assert web.get("/fool/text", follow_redirects=False).headers["location"].endswith(round_url)
    editor = web.get(round_url)
    assert "small elevation on the grinding surface of a tooth" in editor.text and "body part" in editor.text
    assert 'hx-trigger="input changed delay:600ms"' in editor.text and editor.headers["cache-control"] == "no-store"

    checked = web.post(f"/fool/text/{edit_id}/check", data={"csrf_token": csrf, "edited": FOOLING})
    assert checked.status_code == 200 and "Fooled!" in checked.text and "<html" in checked.text
    assert "1 of 9 (11%); the budget is 2 (25%)" in checked.text and "the floor is 0.80" in checked.text
    fragment = web.post(
        f"/fool/text/{edit_id}/check", data={"csrf_token": csrf, "edited": FOOLING}, headers={"HX-Request": "true"}
    )
    assert fragment.text.lstrip().startswith('<div id="verdict"') and "made object" in fragment.text
    assert "<html" not in fragment.text and "HX-Request" in fragment.headers["vary"]
    refused = web.post(f"/fool/text/{edit_id}/check", data={"csrf_token": "forged", "edited": FOOLING})
    assert refused.status_code == 403
    over = web.post(
        f"/fool/text/{edit_id}/submit",
        data={"csrf_token": csrf, "edited": "little bump on the chewing surface of a tooth"},
    )
    assert over.status_code == 422 and "You changed 3 words" in over.text

    submitted = web.post(
        f"/fool/text/{edit_id}/submit", data={"csrf_token": csrf, "edited": FOOLING}, follow_redirects=False
    )
    assert submitted.status_code == 303
    result = web.get(round_url)
    assert "You fooled the machine!" in result.text and FOOLING in result.text

    web.post("/leave", data={"csrf_token": csrf})
    csrf = web_join(web, "reader")
    start = web.get("/fool/text/validate")
    started = web.post("/fool/text/validations", data={"csrf_token": csrf_from(start.text)}, follow_redirects=False)
    assert started.status_code == 303
    question = web.get(started.headers["location"])
    assert FOOLING in question.text and "small elevation" not in question.text  # the original is withheld
    answer_url = started.headers["location"] + "/answer"
    answered = web.post(answer_url, data={"csrf_token": csrf, "choice": "6"}, follow_redirects=False)
    assert answered.status_code == 303
    reveal = web.get(started.headers["location"])
    assert "Yes: it defines a body part." in reveal.text and "small elevation on the grinding" in reveal.text
    assert web.post(answer_url, data={"csrf_token": csrf, "choice": "1"}).status_code == 409

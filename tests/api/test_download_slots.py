"""Answer exports stream in a few download slots: one more is refused with 503 and Retry-After, and a slot comes
back when its stream ends, or never starts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi.testclient import TestClient

from app.api.limits import DownloadsBusy, DownloadSlots
from app.main import create_app
from tests.conftest import empty_tables, make_settings


async def rows() -> AsyncIterator[str]:
    for line in ("a\n", "b\n"):
        yield line


@pytest.mark.anyio
async def test_a_slot_comes_back_when_its_stream_ends_or_never_starts() -> None:
    slots = DownloadSlots(1)
    first = slots.stream(rows(), media_type="text/csv", headers={})
    with pytest.raises(DownloadsBusy):
        slots.stream(rows(), media_type="text/csv", headers={})
    assert [chunk async for chunk in first.body_iterator] == ["a\n", "b\n"]
    assert slots.active == 0
    never_started = slots.stream(rows(), media_type="text/csv", headers={})
    assert slots.active == 1 and never_started.background is not None
    await never_started.background()
    assert slots.active == 0


def test_exports_beyond_the_cap_answer_503_with_retry_after(sqlite_url: str) -> None:
    empty_tables(sqlite_url)
    with TestClient(create_app(make_settings(sqlite_url, export_downloads=1)), base_url="http://testserver") as client:
        assert client.get("/api/v1/export/answers.csv").status_code == 200  # its slot came back
        slow = client.app.state.downloads.stream(rows(), media_type="text/csv", headers={})  # a download under way
        busy = client.get("/api/v1/export/answers.csv")
        assert busy.status_code == 503 and int(busy.headers["Retry-After"]) >= 1
        assert "export" in busy.json()["detail"].lower()
        assert slow.background is not None
    empty_tables(sqlite_url)

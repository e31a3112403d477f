"""Text rounds in the numbers (issue #18): the text table by condition and budget with Wilson intervals (settled
answers only), the answers export with the original and shown text, the research bundle with its text columns and
no images for texts, and the bundle's recompute.py still reproducing GET /api/v1/stats with text rows in it."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient

from app.db.session import open_database
from app.game import players, text
from app.game.text import TEXT_CLASS_NAMES
from app.stats.bundle import recompute as bundle_recompute
from app.stats.intervals import wilson_interval
from app.stats.text import text_table
from tests.game.text_source import ORIGINAL, KnownTexts
from tests.stats.test_bundle import export_zip, recompute


async def seed_text_rounds(url: str) -> None:
    """Three players: six adversarial rounds at 10% (the first four answered right), three clean ones at 10%, and
    two adversarial ones at 20%. The source fools the machine on every attacked text, never on a clean one."""
    database = open_database(url)
    source = KnownTexts()
    try:
        async with database.sessionmaker() as session:
            plan = [("adversarial", 0.1)] * 6 + [("clean", 0.1)] * 3 + [("adversarial", 0.2)] * 2
            readers = [(await players.create_player(session, nickname=f"reader {i}"))[0] for i in range(3)]
            for number, (condition, budget) in enumerate(plan):
                player = readers[number % 3]
                mix = {"clean": 1.0} if condition == "clean" else None
                record = await text.start_text_round(session, player=player, source=source, mix=mix, budget=budget)
                right = number < 4 or condition == "clean"
                choice = TEXT_CLASS_NAMES[record.true_label if right else (record.true_label + 1) % 8]
                await text.answer_text_round(session, player=player, record=record, choice=choice, source=source)
                await session.commit()
    finally:
        await database.dispose()


async def table(url: str) -> list[dict[str, object]]:
    database = open_database(url)
    try:
        async with database.sessionmaker() as session:
            return [cell.as_dict() for cell in await text_table(session)]
    finally:
        await database.dispose()


def test_text_answers_in_the_table_the_exports_and_the_bundle(client: TestClient, tmp_path: Path) -> None:
    url = client.app.state.settings.database_url  # type: ignore[attr-defined]
    asyncio.run(seed_text_rounds(url))

    cells = {(c["condition"], c["budget"]): c for c in asyncio.run(table(url))}
    assert set(cells) == {("adversarial", 0.1), ("clean", 0.1), ("adversarial", 0.2)}
    attacked = cells[("adversarial", 0.1)]
    assert attacked["n"] == 6 and attacked["human_accuracy"] == 4 / 6 and attacked["model_accuracy"] == 0.0
    assert attacked["human_interval"] == list(wilson_interval(4, 6)) and abs(attacked["words_changed"] - 1 / 7) < 1e-12
    assert cells[("clean", 0.1)]["model_accuracy"] == 1.0 and cells[("clean", 0.1)]["similarity"] == 1.0
    assert client.get("/api/v1/stats/text").json() == list(cells.values())
    assert "words:10%" in {g["keys"]["eps_bucket"] for g in client.get("/api/v1/stats").json()["groups"]}
    page = client.get("/stats/text")
    assert page.status_code == 200 and 'id="text-stats"' in page.text and "66.7%" in page.text

    exported = client.get("/api/v1/export/answers.json").json()
    assert len(exported) == 11 and {row["kind"] for row in exported} == {"text"}
    assert all(row["original_text"] == ORIGINAL for row in exported)
    assert {row["shown_text"] != row["original_text"] for row in exported} == {True, False}
    assert exported[0]["true_label"] in TEXT_CLASS_NAMES and exported[0]["norm"] == "words"
    csv_rows = list(csv.DictReader(io.StringIO(client.get("/api/v1/export/answers.csv").text)))
    assert csv_rows[0]["original_text"] == ORIGINAL

    target = tmp_path / "text.zip"
    done = export_zip(url, target)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(target) as archive:
        assert not [name for name in archive.namelist() if name.startswith("images/")], "a text has no image"
        archive.extractall(tmp_path / "bundle")
    folder = tmp_path / "bundle"
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["class_names"]["definitions"] == list(TEXT_CLASS_NAMES)
    rounds = list(csv.DictReader(io.StringIO((folder / "rounds.csv").read_text())))
    answers = list(csv.DictReader(io.StringIO((folder / "answers.csv").read_text())))
    assert list(rounds[0]) == list(meta["files"]["rounds.csv"]["columns"])
    assert list(answers[0]) == list(meta["files"]["answers.csv"]["columns"])
    assert {r["kind"] for r in rounds} == {"text"} and rounds[0]["original_text"] == ORIGINAL
    assert {r["changed_words"] for r in rounds} == {"[]", "[1]"} and answers[0]["shown_image"] == ""
    printed = recompute(folder, "--json")
    assert printed.returncode == 0, printed.stderr
    api = client.get("/api/v1/stats").json()
    assert bundle_recompute.compare(json.loads(printed.stdout)["groups"], api["groups"], tolerance=0.0) == []

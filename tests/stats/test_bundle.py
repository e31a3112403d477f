"""`arena export --format zip`: the research bundle holds everything needed to recompute the stats, and its own
recompute.py (standard library only, run in a fresh interpreter) reproduces GET /api/v1/stats from the CSVs."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.db.session import open_database
from app.ml.packs import get_pack
from app.stats import science
from app.stats import trials as stats_trials
from app.stats.bundle import build as bundle
from app.stats.bundle import recompute as bundle_recompute
from app.stats.trials import StatsFilter, Trial
from tests.stats.science_data import EVENT_CODE, seed_science_data

ROOT = Path(__file__).resolve().parents[2]


def export_zip(database_url: str, target: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ARENA_DATABASE_URL=database_url)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "export", "--format", "zip", "--output", str(target), *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def recompute(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # -I: isolated mode, so nothing from this project or its virtual environment can be imported by the script.
    return subprocess.run(
        [sys.executable, "-I", str(folder / "recompute.py"), *args], capture_output=True, text=True, timeout=120
    )


async def trials_in(url: str) -> list[Trial]:
    database = open_database(url)
    try:
        async with database.sessionmaker() as session:
            return await stats_trials.load_trials(session)
    finally:
        await database.dispose()


def test_the_bundle_recomputes_the_api_table(client: TestClient, tmp_path: Path) -> None:
    url = client.app.state.settings.database_url
    counts = seed_science_data(url)
    target = tmp_path / "out" / "dataset.zip"
    done = export_zip(url, target)
    assert done.returncode == 0, done.stderr
    assert f"{counts['counted']} answers" in done.stderr
    with zipfile.ZipFile(target) as archive:
        names = set(archive.namelist())
        assert {"answers.csv", "rounds.csv", "metadata.json", "DATASHEET.md", "recompute.py", "stats.json"} <= names
        archive.extractall(tmp_path / "bundle")
    folder = tmp_path / "bundle"
    assert not list(target.parent.glob("*.part"))

    # The bundled script, alone, against the live API on the same data: equal to the last bit (tolerance 0), kappa
    # bootstrap intervals included, since both draw the same resamples from random.Random(2020).
    printed = recompute(folder, "--json")
    assert printed.returncode == 0, printed.stderr
    api = client.get("/api/v1/stats").json()
    ours = json.loads(printed.stdout)
    assert ours["group_by"] == api["group_by"]
    assert bundle_recompute.compare(ours["groups"], api["groups"], tolerance=0.0) == []
    # Kappas and their bootstrap intervals are part of what must match, not just accuracies.
    assert any(g["error_consistency_people"] for g in api["groups"])
    assert any(g["error_consistency_model"]["ci"] for g in api["groups"])
    checked = recompute(folder, "--check", "stats.json")
    assert checked.returncode == 0 and "matches the reference" in checked.stdout, checked.stdout
    # The page's other figures: the overall row (no grouping) and the confusion matrices.
    overall = recompute(folder, "--json", "--group-by", "", "--confusions")
    overall_json = json.loads(overall.stdout)
    api_overall = client.get("/api/v1/stats", params={"group_by": ""}).json()["groups"]
    assert bundle_recompute.compare(overall_json["groups"], api_overall, tolerance=0.0) == []
    trials = asyncio.run(trials_in(url))
    matrices = science.confusion_matrices(trials, {"fashion": 10})
    assert overall_json["confusions"]["fashion"] == {
        "human": matrices.human["fashion"],
        "model": matrices.model["fashion"],
    }
    # Any grouping and filter the API offers, the script offers too.
    query = {"group_by": "event,attack", "since": "2026-11-21"}
    api_other = client.get("/api/v1/stats", params=query).json()
    other = recompute(folder, "--json", "--group-by", "event,attack", "--since", "2026-11-21")
    assert bundle_recompute.compare(json.loads(other.stdout)["groups"], api_other["groups"], tolerance=0.0) == []

    # Files: every column documented, every image present and named by its content.
    meta = json.loads((folder / "metadata.json").read_text())
    answers = list(csv.DictReader(io.StringIO((folder / "answers.csv").read_text())))
    rounds = list(csv.DictReader(io.StringIO((folder / "rounds.csv").read_text())))
    assert list(answers[0]) == list(meta["files"]["answers.csv"]["columns"])
    assert list(rounds[0]) == list(meta["files"]["rounds.csv"]["columns"])
    assert len(answers) == len(rounds) == counts["counted"] == meta["counts"]["answers"]
    assert meta["schema_version"] == bundle.SCHEMA_VERSION and meta["software"]["name"] == "adversarial-arena"
    assert meta["class_names"]["fashion"] == list(get_pack("fashion").class_names)
    for row in rounds:
        data = (folder / row["shown_image"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["shown_sha256"]
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # No nicknames (they are the only free text people type) and no answers to the image still counting down.
    text = (folder / "answers.csv").read_text() + (folder / "rounds.csv").read_text()
    assert "solo 0" not in text and "room 1" not in text and "shared4" not in text
    sheet = (folder / "DATASHEET.md").read_text()
    assert "Consent" in sheet and "operator" in sheet and f"{counts['counted']} answers" in sheet


def test_an_event_bundle_and_a_bad_event(client: TestClient, tmp_path: Path) -> None:
    url = client.app.state.settings.database_url
    seed_science_data(url)
    target = tmp_path / "event.zip"
    assert export_zip(url, target, "--event", EVENT_CODE.lower()).returncode == 0
    with zipfile.ZipFile(target) as archive:
        archive.extractall(tmp_path / "event")
        stats = json.loads(archive.read("stats.json"))
    assert stats["filters"]["event"] == EVENT_CODE
    api = client.get("/api/v1/stats", params={"event": EVENT_CODE}).json()
    printed = recompute(tmp_path / "event", "--json")
    assert bundle_recompute.compare(json.loads(printed.stdout)["groups"], api["groups"], tolerance=0.0) == []
    assert sum(g["n"] for g in api["groups"]) == 12
    if not url.startswith("sqlite"):
        return  # the refusal below is the same on every backend; one run of the CLI is enough
    # --event works for the plain exports too.
    env = dict(os.environ, ARENA_DATABASE_URL=url)
    plain = subprocess.run(
        [sys.executable, "-m", "app.cli", "export", "--format", "csv", "--event", EVENT_CODE],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert plain.returncode == 0, plain.stderr
    assert {row["event"] for row in csv.DictReader(io.StringIO(plain.stdout))} == {EVENT_CODE}
    missing = export_zip(url, tmp_path / "none.zip", "--event", "NOPE22")
    assert missing.returncode == 1 and "no event" in missing.stderr.lower() and "Traceback" not in missing.stderr
    assert not (tmp_path / "none.zip").exists()


def test_an_interrupted_export_leaves_nothing_behind(client: TestClient, tmp_path: Path) -> None:
    url = client.app.state.settings.database_url
    seed_science_data(url)
    target = tmp_path / "half.zip"

    def interrupt(_n: int) -> None:
        raise KeyboardInterrupt

    async def run() -> None:
        database = open_database(url)
        try:
            async with database.sessionmaker() as session:
                await bundle.write_bundle(
                    session,
                    target,
                    filters=StatsFilter(),
                    filter_labels={},
                    class_names_of=lambda pack: get_pack(pack).class_names,
                    on_advance=interrupt,
                )
        finally:
            await database.dispose()

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(run())
    assert list(tmp_path.iterdir()) == []


def test_bundle_person_ids_are_pseudonyms_that_change_from_bundle_to_bundle(client: TestClient, tmp_path: Path) -> None:
    url = client.app.state.settings.database_url
    seed_science_data(url)
    real = {t.round_id: t.player_id for t in asyncio.run(trials_in(url))}
    seen: list[dict[str, str]] = []
    for name in ("first", "second"):
        target = tmp_path / f"{name}.zip"
        assert export_zip(url, target).returncode == 0
        with zipfile.ZipFile(target) as archive:
            documents = archive.read("stats.json") + archive.read("metadata.json") + archive.read("DATASHEET.md")
            answers = list(csv.DictReader(io.StringIO(archive.read("answers.csv").decode())))
            rounds = list(csv.DictReader(io.StringIO(archive.read("rounds.csv").decode())))
        people = set(real.values())
        assert not {row["player_id"] for row in answers + rounds} & people, "no real player id"
        assert not [person for person in people if person.encode() in documents]
        # One pseudonym per person, the same in both files of one bundle.
        pseudonym = {real[row["round_id"]]: row["player_id"] for row in answers}
        assert len(set(pseudonym.values())) == len(pseudonym) == len(set(real.values()))
        assert all(pseudonym[real[row["round_id"]]] == row["player_id"] for row in answers + rounds)
        seen.append(pseudonym)
    first, second = seen
    assert not set(first.values()) & set(second.values()), "two bundles cannot be joined on person ids"

"""/lab/defenses: the defended opponents' figures from their cards, each with n and the command behind it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.deps import get_settings_dep
from app.web.defense_lab import LAB_OPPONENTS, NOT_BUILT, load_lab
from tests.conftest import MODELS_DIR
from tests.web.test_pages import join


@pytest.fixture
def models_dir_override(client: TestClient, tmp_path: Path) -> Iterator[Path]:
    app = client.app
    settings = app.state.settings.model_copy(update={"models_dir": tmp_path})  # type: ignore[attr-defined]
    app.dependency_overrides[get_settings_dep] = lambda: settings  # type: ignore[attr-defined]
    yield tmp_path
    app.dependency_overrides.pop(get_settings_dep, None)  # type: ignore[attr-defined]


def test_committed_cards_are_shown_with_n_and_commands(client: TestClient) -> None:
    text = client.get("/lab/defenses").text
    assert 'href="/lab/defenses"' in text
    for entry in load_lab(MODELS_DIR):
        if entry["card"] is None:
            continue
        for row in entry["rows"]:
            assert f'data-row="{row["id"]}"' in text
            assert row["command"] in text
            assert row["n"] >= 1000
    squeezed = json.loads((MODELS_DIR / "fashion-squeezed.json").read_text())
    assert f"{100 * squeezed['detector']['test_fpr']:.1f}%" in text


def test_missing_cards_say_which_command_makes_them(client: TestClient, models_dir_override: Path) -> None:
    text = client.get("/lab/defenses").text
    for opp in LAB_OPPONENTS:
        assert opp.make in text.replace("&amp;", "&")
    for name in NOT_BUILT:
        assert name in text
    assert "Defense-GAN" not in NOT_BUILT and "Defense-GAN" in text  # built: listed with the command making it


def test_a_card_without_lab_rows_asks_for_the_eval(client: TestClient, models_dir_override: Path) -> None:
    card = json.loads((MODELS_DIR / "fashion-squeezed.json").read_text())
    card.pop("defense_lab", None)
    (models_dir_override / "fashion-squeezed.json").write_text(json.dumps(card))
    (models_dir_override / "fashion-robust.json").write_text("{broken")
    text = client.get("/lab/defenses").text
    assert "arena defense-eval --opponent fashion-squeezed" in text
    assert "fashion-robust.json could not be read" in text


def test_defense_gan_is_offered_to_players(client: TestClient) -> None:
    """Built means playable: the opponents list and the play page's chooser offer it, attacked by BPDA."""
    opponents = {o["name"]: o for o in client.get("/api/v1/opponents").json()}
    defgan = opponents["fashion-defgan"]
    assert defgan["card"]["adaptive_attack"]["attack"] == "bpda-pgd"
    assert defgan["attacks"], "some attack can be played against it"
    join(client, "chooser")
    assert 'value="fashion-defgan"' in client.get("/play").text

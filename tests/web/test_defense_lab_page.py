"""/lab/defenses: the defended opponents' figures from their cards, each with n and the command behind it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from app.deps import get_settings_dep
from app.web.defense_lab import LAB_OPPONENTS, NOT_BUILT, load_lab
from tests.conftest import MODELS_DIR
from tests.helpers import web_join


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
            # Only a standard AutoAttack row may run on fewer images (CPU time), and then it says on which.
            assert row["n"] >= 1000 or f"on the {escape(row['subset'])} (n = {row['n']};" in text
            assert row["n"] >= 1000 or row["subset"].startswith(f"first {row['n']:,} ")
    squeezed = json.loads((MODELS_DIR / "fashion-squeezed.json").read_text())
    assert f"{100 * squeezed['detector']['test_fpr']:.1f}%" in text
    certified = json.loads((MODELS_DIR / "fashion-certified.json").read_text())["certified"]
    assert f"{100 * certified['certified_accuracy']['0.1']:.1f}%</strong> provably correct" in text
    assert f"{certified['median_radius']:.4f}" in text


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


def test_curves_group_rows_by_attack_and_start_at_clean_accuracy() -> None:
    from app.stats.defense_curves import curves_from_rows

    rows = [
        {"role": "naive", "attack": "pgd", "params": {"steps": 10}, "eps": 0.1, "n": 1000, "accuracy": 0.1},
        {"role": "naive", "attack": "pgd", "params": {"steps": 10}, "eps": 0.05, "n": 1000, "accuracy": 0.4},
        {"role": "adaptive", "attack": "bpda-pgd", "params": {}, "eps": 0.05, "n": 1000, "accuracy": 0.3},
        {"role": "adaptive", "attack": "cw", "params": {}, "eps": 28.0, "n": 1000, "accuracy": 0.0},
    ]
    curves = curves_from_rows(rows, 0.92, 1000)
    assert [c.label for c in curves] == ["pgd (steps=10), naive"], "one eps is no curve; L2 rows are off the axis"
    points = curves[0].points
    assert [p.eps for p in points] == [0.0, 0.05, 0.1] and points[0].accuracy == 0.92
    assert all(p.interval[0] <= p.accuracy <= p.interval[1] for p in points)
    assert curves_from_rows(rows, 0.92, 10_000)[0].points[0].eps == 0.05, "clean accuracy on other images is left out"


def test_curve_charts_are_served_for_measured_opponents(client: TestClient) -> None:
    measured = [e for e in load_lab(MODELS_DIR) if e.get("curves")]
    assert measured, "the committed cards hold rows at two or more eps for at least one opponent"
    name = measured[0]["opponent"].name
    text = client.get("/lab/defenses").text
    assert f'src="/lab/defenses/{name}/curves.svg"' in text
    svg = client.get(f"/lab/defenses/{name}/curves.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content[:500]
    png = client.get(f"/lab/defenses/{name}/curves.png")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/lab/defenses/{name}/curves.gif").status_code == 404
    assert client.get("/lab/defenses/nobody/curves.svg").status_code == 404


def test_defense_gan_is_offered_to_players(client: TestClient) -> None:
    """Built means playable: the opponents list and the play page's chooser offer it, attacked through its
    unrolled projection."""
    opponents = {o["name"]: o for o in client.get("/api/v1/opponents").json()}
    defgan = opponents["fashion-defgan"]
    assert defgan["card"]["adaptive_attack"]["attack"] == "unrolled-pgd"
    assert defgan["attacks"], "some attack can be played against it"
    web_join(client, "chooser")
    assert 'value="fashion-defgan"' in client.get("/play").text


def test_the_standard_autoattack_row_is_shown_and_named_exactly(client: TestClient, models_dir_override: Path) -> None:
    card = json.loads((MODELS_DIR / "fashion-robust.json").read_text())
    row = {
        "role": "strongest",
        "attack": "autoattack",
        "label": "AutoAttack (standard)",
        "params": {"version": "standard"},
        "eps": 0.1,
        "n": 200,
        "accuracy": 0.5,
        "success_rate": 0.4,
        "time_s": 1.0,
        "implementation": "torchattacks 3.5.1 AutoAttack(version='standard'): APGD (ce, 10 iterations, 1 restart)",
        "attacked_view": "the deployed model itself",
        "strongest_by": "RobustBench's convention",
        "differs_from_reference": "iterations here: APGD 10",
        "subset": "first 200 test images",
        "measured": "2026-12-03",
        "clean_accuracy": 0.875,
        "command": "arena defense-eval --opponent fashion-robust --row autoattack-0.1",
    }
    card["defense_lab"]["rows"]["autoattack-0.1"] = row
    card["defense_lab"]["rows"]["apgd-0.1"]["label"] = "APGD-CE + APGD-DLR, 1 restart each, worst case per image"
    (models_dir_override / "fashion-robust.json").write_text(json.dumps(card))
    text = client.get("/lab/defenses").text
    section = text[text.index('id="lab-fashion-robust"') :]
    section = section[: section.index("</section>")]
    assert 'data-row="autoattack-0.1" data-role="strongest"' in section
    assert "<td>AutoAttack (standard) <small" in section
    assert "<td>APGD-CE + APGD-DLR, 1 restart each, worst case per image <small" in section
    assert 'data-implementation="autoattack-0.1"' in section
    assert "Measured 2026-12-03 on the first 200 test images (n = 200; clean accuracy 87.5%)" in section
    assert "iterations here: APGD 10" in section
    assert "<strong>50.0%</strong>" in section


def test_committed_defended_cards_show_their_autoattack_row(client: TestClient) -> None:
    text = client.get("/lab/defenses").text
    for entry in load_lab(MODELS_DIR):
        if entry["card"] is None or entry["opponent"].name == "fashion-cnn":
            continue
        name = entry["opponent"].name
        section = text[text.index(f'id="lab-{name}"') :]
        section = section[: section.index("</section>")]
        assert 'data-row="autoattack-0.1" data-role="strongest"' in section, name
        assert "<td>AutoAttack (standard) <small" in section, name

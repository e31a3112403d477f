"""The committed checkpoints match their cards: the file's hash, the clean return on a few of the card's episodes,
and the Markdown rendered from the JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.ml.agents.card import checkpoint_section, read_agent_card, render_agent_markdown
from app.ml.agents.episodes import run_episode
from app.ml.agents.evaluation import CARD_SEEDS
from app.ml.agents.plot import plot_attacks
from app.ml.agents.train import AGENT_NAME, CLEAN_GOAL, REPLICA_NAME

FEW = 3


@pytest.mark.parametrize("name", [AGENT_NAME, REPLICA_NAME])
def test_a_checkpoint_reaches_its_cards_clean_return(repo_models_dir: Path, name: str, request) -> None:
    card = read_agent_card(repo_models_dir, name)
    network = request.getfixturevalue("agent" if name == AGENT_NAME else "replica")
    assert card["checkpoint"] == checkpoint_section(repo_models_dir, name)
    clean = card["evaluation"]["clean"]
    assert card["evaluation"]["n"] >= 100 and clean["mean"] >= CLEAN_GOAL
    returns = [run_episode(network, seed).total_return for seed in CARD_SEEDS[:FEW]]
    assert sum(returns) / FEW >= clean["low"]


@pytest.mark.parametrize("name", [AGENT_NAME, REPLICA_NAME])
def test_the_markdown_card_is_rendered_from_its_json(repo_models_dir: Path, name: str) -> None:
    card = read_agent_card(repo_models_dir, name)
    assert (repo_models_dir / f"{name}.md").read_text(encoding="utf-8") == render_agent_markdown(card)


def test_the_agents_card_measures_every_attack_on_enough_episodes(repo_models_dir: Path) -> None:
    attacks = read_agent_card(repo_models_dir, AGENT_NAME)["attacks"]
    assert {row["attack"] for row in attacks["by_budget"]} == {"fgsm", "timed", "induction"}
    assert all(row["n"] >= 100 and row["low"] <= row["mean"] <= row["high"] for row in attacks["by_budget"])
    assert all(row["n"] >= 100 for row in attacks["by_attacked_steps"])
    for suffix in ("png", "svg"):
        assert (repo_models_dir / attacks["plot"][suffix]).stat().st_size > 0


def test_the_plot_is_written_as_png_and_svg(repo_models_dir: Path, tmp_path: Path) -> None:
    card = read_agent_card(repo_models_dir, AGENT_NAME)
    png, svg = plot_attacks(card["attacks"], card["evaluation"]["clean"], tmp_path / "plot")
    assert png.read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in svg.read_bytes()[:2000]

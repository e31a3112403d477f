"""``python -m app.ml.agents.train`` end to end, on a budget too small to learn anything: it writes both
checkpoints, both cards (Markdown rendered from the JSON) and the plot, and re-measures with --skip-training."""

from __future__ import annotations

import json
from pathlib import Path

from app.ml.agents.card import render_agent_markdown
from app.ml.agents.train import AGENT_NAME, REPLICA_NAME, main


def test_the_command_writes_checkpoints_cards_and_plot(tmp_path: Path) -> None:
    main(["--total-steps", "300", "--episodes", "2", "--models-dir", str(tmp_path)])
    for name in (AGENT_NAME, REPLICA_NAME):
        card = json.loads((tmp_path / f"{name}.json").read_text())
        assert (tmp_path / f"{name}.md").read_text() == render_agent_markdown(card)
        assert card["training"]["command"].endswith("--total-steps 300")
        assert card["evaluation"]["n"] == 2
    agent_card = json.loads((tmp_path / f"{AGENT_NAME}.json").read_text())
    assert "attacks" in agent_card and "attacks" not in json.loads((tmp_path / f"{REPLICA_NAME}.json").read_text())
    assert (tmp_path / f"{AGENT_NAME}-attacks.png").exists() and (tmp_path / f"{AGENT_NAME}-attacks.svg").exists()

    main(["--skip-training", "--episodes", "2", "--models-dir", str(tmp_path)])
    assert json.loads((tmp_path / f"{AGENT_NAME}.json").read_text())["training"] == agent_card["training"]

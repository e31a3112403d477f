"""Architecture rules that can be checked mechanically."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"


def test_web_api_game_stats_and_db_do_not_load_torch() -> None:
    """Only the model service runs torch; the rest must import without it so the web tier can talk to a remote
    model service without carrying torch."""
    code = (
        "import sys\n"
        "import app.web.routes, app.api.routes, app.game.rounds, app.stats.export, app.db, app.main\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", result.stderr


def test_torch_is_imported_only_under_app_ml() -> None:
    offenders = []
    for path in APP.rglob("*.py"):
        if path.is_relative_to(APP / "ml"):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name == "torch" or name.startswith("torch.") for name in names):
                offenders.append(f"{path.relative_to(APP)}:{node.lineno}")
    assert offenders == []


def test_game_and_stats_know_nothing_of_http() -> None:
    for folder in ("game", "stats"):
        for path in (APP / folder).rglob("*.py"):
            text = path.read_text()
            assert "fastapi" not in text and "starlette" not in text, path


def test_the_web_tier_does_not_load_matplotlib_at_start_up() -> None:
    """Charts are drawn on demand: importing the app must not pay for matplotlib."""
    code = "import sys\nimport app.main, app.web.events, app.stats.events\nprint('matplotlib' in sys.modules)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False", result.stderr

"""The app as `arena serve` runs it (real in-process model service, real text opponents and encoder), except that
every new fool-the-machine round is drawn from one known test text, so a browser test knows which edit fools the
machine: ``python -m tests.browser.fool_text_server PORT``."""

from __future__ import annotations

import sys

import uvicorn

from app.game.fool_text import texts
from app.main import create_app
from tests.fool_text import TOOTH


def main() -> None:
    texts.draw_indices = lambda n: [TOOTH]  # type: ignore[assignment]
    uvicorn.run(create_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")


if __name__ == "__main__":
    main()

"""One Jinja environment for every page and fragment: autoescape on, undefined variables are errors, and static
files are referenced through static_url(), which appends a content hash so browsers never keep a stale copy."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2_fragments.fastapi import Jinja2Blocks

from app.config import PROJECT_ROOT
from app.game.difficulty import eps_as_grey_levels
from app.game.reveal import budget_text
from app.game.text import is_text_pack
from app.game.text_play import Piece, pieces

TEMPLATES_DIR = PROJECT_ROOT / "templates"
STATIC_DIR = PROJECT_ROOT / "static"


@lru_cache(maxsize=256)
def _file_hash(path: Path, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    path = (STATIC_DIR / name).resolve()
    if not path.is_relative_to(STATIC_DIR.resolve()) or not path.is_file():
        raise ValueError(f"no static file {name!r}")
    return f"/static/{name}?v={_file_hash(path, path.stat().st_mtime_ns)}"


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def round_budget(record: Any) -> str:
    """A round's budget in words: "6/255 grey levels per pixel", "L2 size 1.41" or "3 pixels"."""
    text = budget_text(record.norm or "linf", record.eps, record.attack_params or {})
    return f"{text} grey levels per pixel" if (record.norm or "linf") == "linf" else text


def event_budget(eps: float, pack: str) -> str:
    """A budget as an event shows it: a share of the words for the text pack, grey levels for images."""
    return f"{eps:.0%} of words" if is_text_pack(pack) else eps_as_grey_levels(eps)


def text_pieces(value: str | None, changed: list[int] | None) -> tuple[Piece, ...]:
    return pieces(value or "", set(changed or []))


def build_templates() -> Jinja2Blocks:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["static_url"] = static_url
    environment.filters["percent"] = percent
    environment.filters["grey_levels"] = eps_as_grey_levels
    environment.filters["budget"] = round_budget
    # Text rounds (issue #18): a budget in the event's own units, and a text cut into (marked) words
    environment.filters["event_budget"] = event_budget
    environment.filters["text_pieces"] = text_pieces
    return Jinja2Blocks(env=environment)

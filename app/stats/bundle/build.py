"""The research bundle (`arena export --format zip`): every counted trial with its images, so the data can be analysed
elsewhere and the stats page recomputed from the files alone.

Contents: answers.csv (one row per answered round), rounds.csv (how each image was made: attack, parameters, seed,
test-image index, the model's probabilities), images/<sha256>.png (the clean and the shown image of every round,
named by content, so an image shown to many people is stored once), metadata.json (schema, column documentation,
definitions, software version, filters), DATASHEET.md, stats.json (the stats table the server computed at export)
and recompute.py (the same table from answers.csv with the standard library only).

The zip is written to a temporary file beside the target and moved into place only when complete: an interrupted
export leaves no half-written bundle."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import RoundRecord
from app.stats import science
from app.stats.bundle.documentation import datasheet, definitions, software_info
from app.stats.bundle.pseudonyms import Pseudonyms
from app.stats.bundle.rows import ANSWER_COLUMNS, ROUND_COLUMNS, answer_row, csv_text, round_row
from app.stats.export import iso_utc
from app.stats.trials import StatsFilter, Trial, load_trials

SCHEMA_VERSION = "1.0"
RECOMPUTE_SOURCE = Path(__file__).with_name("recompute.py")
PAGE = 200  # rounds (with their PNGs) read per query
FILTER_NAMES = ("event", "pack", "opponent", "attack", "condition", "since", "until")


@dataclass(frozen=True)
class BundleSummary:
    path: Path
    answers: int
    rounds: int
    images: int
    players: int
    bytes: int


async def _rounds_by_id(session: AsyncSession, ids: Sequence[str]) -> dict[str, RoundRecord]:
    records = await session.scalars(select(RoundRecord).where(RoundRecord.id.in_(list(ids))))
    return {record.id: record for record in records}


def _image_path(data: bytes) -> tuple[str, str]:
    digest = hashlib.sha256(data).hexdigest()
    return f"images/{digest}.png", digest


async def write_bundle(
    session: AsyncSession,
    output: Path,
    *,
    filters: StatsFilter,
    filter_labels: dict[str, Any],
    class_names_of: Callable[[str], Sequence[str]],
    on_start: Callable[[int], None] | None = None,
    on_advance: Callable[[int], None] | None = None,
) -> BundleSummary:
    """Write the bundle for the trials matching ``filters`` to ``output`` (atomically). ``on_start(total)`` and
    ``on_advance(n)`` report progress in rounds."""
    trials = await load_trials(session, filters)
    if on_start is not None:
        on_start(len(trials))
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".part", dir=output.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        summary = await _write(session, temp, trials, filter_labels, class_names_of, on_advance)
        os.replace(temp, output)
    except BaseException:  # KeyboardInterrupt included: never leave a half-written bundle behind
        temp.unlink(missing_ok=True)
        raise
    return BundleSummary(path=output, bytes=output.stat().st_size, **summary)


async def _write(
    session: AsyncSession,
    temp: Path,
    trials: Sequence[Trial],
    filter_labels: dict[str, Any],
    class_names_of: Callable[[str], Sequence[str]],
    on_advance: Callable[[int], None] | None,
) -> dict[str, int]:
    class_names: dict[str, list[str]] = {}
    for pack in sorted({t.pack for t in trials}):
        try:
            class_names[pack] = list(class_names_of(pack))
        except KeyError:  # a pack this installation does not know: keep the indices, name them by number
            used = [label for t in trials if t.pack == pack for label in (t.true_label, t.human_answer, t.model_answer)]
            class_names[pack] = [str(i) for i in range(max(used) + 1)]
    answers: list[dict[str, Any]] = []
    rounds: list[dict[str, Any]] = []
    written: set[str] = set()
    pseudonyms = Pseudonyms()
    with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for start in range(0, len(trials), PAGE):
            page = trials[start : start + PAGE]
            records = await _rounds_by_id(session, [t.round_id for t in page])
            for trial in page:
                record = records[trial.round_id]
                clean_path, clean_sha = _image_path(record.clean_png)
                shown_path, shown_sha = _image_path(record.adversarial_png)
                if record.kind == "text":  # a text round (issue #18): its texts are in the rows, it has no images
                    clean_path = clean_sha = shown_path = shown_sha = ""
                for path, data in ((clean_path, record.clean_png), (shown_path, record.adversarial_png)):
                    if path and path not in written:  # PNG is compressed already: store it as it is
                        bundle.writestr(path, data, compress_type=zipfile.ZIP_STORED)
                        written.add(path)
                person = pseudonyms.of(trial.player_id)
                answers.append(answer_row(trial, record, class_names[trial.pack], person, (clean_path, shown_path)))
                rounds.append(round_row(trial, record, person, (clean_path, clean_sha), (shown_path, shown_sha)))
            if on_advance is not None:
                on_advance(len(page))
        bundle.writestr("answers.csv", csv_text(tuple(ANSWER_COLUMNS), answers))
        bundle.writestr("rounds.csv", csv_text(tuple(ROUND_COLUMNS), rounds))
        groups = science.group_stats(trials, science.DEFAULT_GROUP_BY)
        stats = {
            "group_by": list(science.DEFAULT_GROUP_BY),
            "filters": {name: filter_labels.get(name) for name in FILTER_NAMES},
            "groups": [group.as_dict() for group in groups],
        }
        bundle.writestr("stats.json", json.dumps(stats, indent=2) + "\n")
        summary = {
            "exported_at": iso_utc(datetime.now(UTC)),
            "answers": len(answers),
            "rounds": len(rounds),
            "images": len(written),
            "players": len({t.player_id for t in trials}),
        }
        meta = {
            "schema_version": SCHEMA_VERSION,
            "exported_at": summary["exported_at"],
            "software": software_info(),
            "filters": stats["filters"],
            "counts": {k: v for k, v in summary.items() if k != "exported_at"},
            "class_names": class_names,
            "definitions": definitions(),
            "files": {
                "answers.csv": {"description": "One row per trial (answered round).", "columns": ANSWER_COLUMNS},
                "rounds.csv": {"description": "How each answered round's image was made.", "columns": ROUND_COLUMNS},
                "images/": "PNG files named by the SHA-256 of their bytes; 8-bit, exactly as stored and shown.",
                "stats.json": "The stats table (GET /api/v1/stats, default grouping) computed at export.",
                "recompute.py": "Recomputes stats.json's table from answers.csv with the standard library only.",
                "DATASHEET.md": "What was shown, how, to whom; consent note.",
            },
        }
        bundle.writestr("metadata.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        attacks = sorted({t.attack for t in trials})
        bundle.writestr(
            "DATASHEET.md",
            datasheet(summary=summary, filters=stats["filters"], class_names=class_names, attacks=attacks),
        )
        bundle.write(RECOMPUTE_SOURCE, "recompute.py")
    return {k: v for k, v in summary.items() if k in ("answers", "rounds", "images", "players")}

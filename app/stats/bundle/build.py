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

import contextlib
import csv
import hashlib
import io
import json
import os
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import PROJECT_ROOT
from app.db.tables import RoundRecord
from app.stats import science
from app.stats.consistency import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from app.stats.trials import EPS_BUCKET_DOC, StatsFilter, Trial, load_trials

SCHEMA_VERSION = "1.0"
RECOMPUTE_SOURCE = Path(__file__).with_name("recompute.py")
PAGE = 200  # rounds (with their PNGs) read per query

ANSWER_COLUMNS: dict[str, str] = {
    "answer_id": "Unique id of the answer.",
    "answered_at": "When the answer was stored, ISO 8601 in UTC.",
    "player_id": "Random id of the person (no nickname or other personal data is exported).",
    "round_id": "The round answered; joins rounds.csv.",
    "shared_image": "Id of the together image when everyone in an event saw the same image at once; empty otherwise.",
    "event": "Join code of the workshop event; empty for play outside events.",
    "pack": "Data pack (dataset) of the image.",
    "opponent": "The classifier the person played against.",
    "attack": "Attack that made the shown image (paper name, e.g. pgd, fgsm).",
    "norm": "Norm of the budget: linf, l2 or l0.",
    "condition": "Experimental condition of the round (adversarial for plain play; clean, noise, ... controls).",
    "eps": "Budget in pixel units on [0,1] images (linf/l0: per-pixel change; l2: radius). Full float precision.",
    "eps_bucket": "The bucket used for grouping (see metadata.json 'definitions.eps_bucket').",
    "true_label": "Index of the true class (class_names in metadata.json).",
    "true_class": "Name of the true class.",
    "human_answer": "Index of the class the person chose.",
    "human_class": "Name of the class the person chose.",
    "model_answer": "Index of the class the model chose on the shown (rounded, stored) image.",
    "model_class": "Name of the class the model chose.",
    "model_confidence": "The model's softmax probability of its answer.",
    "human_correct": "1 if the person was right, else 0.",
    "model_correct": "1 if the model was right, else 0.",
    "response_ms": "Milliseconds from the round's creation to the answer.",
    "shown_ms": "Flash mode: how long the image was on screen, as the browser measured it (requestAnimationFrame); "
    "empty outside flash mode or when the browser did not measure it.",
    "timing_flagged": "Flash mode: 1 when the measurement is missing or misses flash_ms (rounds.csv) by more than one "
    "60 Hz frame (16.7 ms); empty outside flash mode.",
    "clean_image": "Path in this bundle of the unperturbed image (PNG).",
    "shown_image": "Path in this bundle of the image the person saw (PNG, exactly the stored pixels).",
}

ROUND_COLUMNS: dict[str, str] = {
    "round_id": "Unique id of the round (one image shown to one person).",
    "created_at": "When the image was made and stored, ISO 8601 in UTC.",
    "player_id": "Random id of the person it was shown to.",
    "event": "Join code of the workshop event; empty outside events.",
    "phase": "Phase of the event (0-based); empty outside events.",
    "shared_image": "Id of the together image this round is a copy of; empty otherwise.",
    "pack": "Data pack (dataset).",
    "image_index": "Index of the image in the pack's test split.",
    "opponent": "The classifier attacked and answering.",
    "attack": "Attack name.",
    "attack_params": "The attack's parameters as JSON (besides eps).",
    "norm": "Norm of the budget: linf, l2 or l0.",
    "eps": "Budget in pixel units on [0,1] images.",
    "eps_bucket": "Grouping bucket of the budget.",
    "condition": "Experimental condition.",
    "surrogate": "For transfer rounds, the model the attack was crafted on; empty otherwise.",
    "seed": "Seed of the attack's random generator: with image_index, attack, attack_params and eps it regenerates "
    "the shown image.",
    "level": "The person's difficulty step when the round was made.",
    "true_label": "Index of the true class.",
    "clean_label": "The model's answer on the clean image.",
    "clean_confidence": "The model's probability of its clean answer.",
    "model_label": "The model's answer on the shown image.",
    "model_confidence": "The model's probability of that answer.",
    "model_probs": "The model's probabilities for every class on the shown image, JSON list.",
    "linf": "Largest per-pixel change of the shown image, pixel units.",
    "l2": "L2 size of the shown change, pixel units (empty where not recorded).",
    "queries": "Model queries a black-box attack used (empty for white-box attacks).",
    "query_budget": "Model queries a black-box attack was allowed.",
    "flash_ms": "Flash mode: how long the image was meant to be on screen before the mask; empty: shown until "
    "answered.",
    "defense_verdict": "Defended opponents: what the defense did to the shown image (rejected by its detector, "
    "reformed by its input transform, certified within its proven radius, withstood, fooled); empty otherwise.",
    "certified_radius": "Certified opponents: the L∞ radius the model proves around the clean image, pixel units; "
    "empty otherwise.",
    "clean_image": "Path of the clean image PNG in this bundle.",
    "shown_image": "Path of the shown image PNG in this bundle.",
    "clean_sha256": "SHA-256 of the clean PNG file.",
    "shown_sha256": "SHA-256 of the shown PNG file.",
}


@dataclass(frozen=True)
class BundleSummary:
    path: Path
    answers: int
    rounds: int
    images: int
    players: int
    bytes: int


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return value


def _csv_text(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
    return buffer.getvalue()


def software_info() -> dict[str, Any]:
    try:
        version = importlib_metadata.version("adversarial-arena")
    except importlib_metadata.PackageNotFoundError:
        version = None
    commit = None
    dirty = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if done.returncode == 0:
            commit = done.stdout.strip()
            status = subprocess.run(
                ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"name": "adversarial-arena", "version": version, "git_commit": commit, "git_uncommitted_changes": dirty}


def definitions() -> dict[str, str]:
    return {
        "trial": "One answered round: a person's answer and the model's answer on the very same stored pixels. "
        "Unanswered rounds and guess-the-machine rounds (which ask for the machine's answer) are not exported; "
        "answers to a together image whose countdown was still running at export time are left out.",
        "eps_bucket": EPS_BUCKET_DOC,
        "norms": "linf: every pixel changes by at most eps; l2: the change's Euclidean length is at most eps; "
        "l0: a few pixels change, each by at most eps. Pixel units on images scaled to [0,1].",
        "accuracy_interval": "95% Wilson score interval (Wilson 1927).",
        "error_consistency": "Geirhos, Meding & Wichmann (2020): c_obs = fraction of trials where both observers "
        "are right or both wrong; c_exp = p1*p2 + (1-p1)*(1-p2) from their accuracies; kappa = (c_obs - c_exp) / "
        "(1 - c_exp), undefined when c_exp = 1. error_consistency_model: people (pooled: every answer is a trial) "
        "vs the model. error_consistency_model_by_person: kappa of each person vs the model over their own "
        "trials, mean over people (Geirhos et al.'s observer-by-observer form). error_consistency_people: mean "
        "over pairs of people of kappa on the together images both answered.",
        "kappa_interval": f"Percentile bootstrap, {BOOTSTRAP_RESAMPLES} resamples with Python "
        f"random.Random({BOOTSTRAP_SEED}) (fresh per interval): people vs model resample trials "
        "(rng.choices over the four agreement cells weighted by their counts); by person: resample the people's "
        "kappas (rng.choices over people sorted by id), mean; people vs people resample together "
        "images (rng.choices over the images sorted by id). 2.5th and 97.5th percentiles, linear interpolation; "
        "undefined resamples dropped.",
        "model_accuracy": "The model on the same answered rounds as the people (a together image counts once per "
        "person who answered it).",
        "independence_caveat": "Wilson intervals treat every answer as an independent trial. Answers by the same "
        "person are not independent, and the model's answers to the copies of one together image are identical, "
        "so these intervals are narrower than a clustered analysis (by player_id, by shared_image) would give; "
        "the CSVs carry both ids for such analyses.",
    }


def datasheet(
    *, summary: dict[str, Any], filters: dict[str, Any], class_names: dict[str, list[str]], attacks: list[str]
) -> str:
    scope = ", ".join(f"{k}={v}" for k, v in filters.items() if v is not None) or "everything in the database"
    packs = ", ".join(f"{pack} ({len(names)} classes)" for pack, names in class_names.items()) or "none"
    return f"""# Datasheet: Adversarial Arena answers

Exported {summary["exported_at"]} ({scope}). {summary["answers"]} answers from {summary["players"]} people on
{summary["rounds"]} rounds ({summary["images"]} distinct image files).

## What was shown
Test images of the data pack(s) {packs}, each one the opponent classifier labels correctly when clean, perturbed
by an adversarial attack ({", ".join(attacks) or "none"}) within a budget eps (see metadata.json: norms, eps
buckets) or shown under a control condition (column `condition`). The shown image is stored exactly as displayed
(8-bit PNG, `shown_image`); `clean_image` is the unperturbed original. rounds.csv records the attack, its
parameters, the test-image index and the random seed, from which the server regenerates the shown image bit for
bit.

## How
In a web browser (phone or computer), one image at a time, enlarged with nearest-neighbour (pixelated) scaling
(a 28x28 Fashion-MNIST image fills 280x280 CSS pixels). The person picks one of the pack's classes (every class
name is offered as a button); there is one answer per round and no time limit per image when playing at their own
pace (an event may set an overall time limit). In workshop events with "together" rounds everyone sees the same
image at once with a countdown (20 s unless the host chose otherwise); answers after it are refused. Right after
answering, people see the truth, the model's answer and the perturbation, so later answers are made by people who
have seen earlier reveals (learning effects are possible). Budgets follow a per-person 1-up/1-down staircase in
plain play, or the host's settings in events.

## To whom
Whoever played: visitors of the game and participants of workshop events. People chose a nickname; nothing else
is asked (no e-mail, age, vision or other demographics). The bundle identifies people only by a random id
(`player_id`); nicknames are left out. The sample is self-selected and not representative of any population.

## Consent
The game stores nicknames and answers only, no personal data. The operator of this server is responsible for
telling players that their answers may be used for research and for obtaining any consent their institution or
jurisdiction requires before publishing or sharing this bundle.

## Recomputing the figures
`python3 recompute.py` (standard library only) prints the stats page's table from answers.csv;
`python3 recompute.py --check stats.json` compares it with the table the server computed at export.
"""


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
    with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for start in range(0, len(trials), PAGE):
            page = trials[start : start + PAGE]
            records = await _rounds_by_id(session, [t.round_id for t in page])
            for trial in page:
                record = records[trial.round_id]
                clean_path, clean_sha = _image_path(record.clean_png)
                shown_path, shown_sha = _image_path(record.adversarial_png)
                for path, data in ((clean_path, record.clean_png), (shown_path, record.adversarial_png)):
                    if path not in written:  # PNG is compressed already: store it as it is
                        bundle.writestr(path, data, compress_type=zipfile.ZIP_STORED)
                        written.add(path)
                names = class_names[trial.pack]
                answers.append(
                    {
                        "answer_id": trial.answer_id,
                        "answered_at": _iso(trial.answered_at),
                        "player_id": trial.player_id,
                        "round_id": trial.round_id,
                        "shared_image": trial.shared_image,
                        "event": trial.event,
                        "pack": trial.pack,
                        "opponent": trial.opponent,
                        "attack": trial.attack,
                        "norm": trial.norm,
                        "condition": trial.condition,
                        "eps": trial.eps,
                        "eps_bucket": trial.eps_bucket,
                        "true_label": trial.true_label,
                        "true_class": names[trial.true_label],
                        "human_answer": trial.human_answer,
                        "human_class": names[trial.human_answer],
                        "model_answer": trial.model_answer,
                        "model_class": names[trial.model_answer],
                        "model_confidence": float(record.model_confidence),
                        "human_correct": trial.human_correct,
                        "model_correct": trial.model_correct,
                        "response_ms": trial.response_ms,
                        "shown_ms": trial.shown_ms,
                        "timing_flagged": trial.timing_flagged,
                        "clean_image": clean_path,
                        "shown_image": shown_path,
                    }
                )
                rounds.append(
                    {
                        "round_id": record.id,
                        "created_at": _iso(record.created_at),
                        "player_id": record.player_id,
                        "event": trial.event,
                        "phase": record.phase,
                        "shared_image": record.shared_round_id,
                        "pack": record.pack,
                        "image_index": record.image_index,
                        "opponent": record.opponent,
                        "attack": record.attack,
                        "attack_params": json.dumps(record.attack_params or {}, sort_keys=True),
                        "norm": record.norm,
                        "eps": float(record.eps),
                        "eps_bucket": trial.eps_bucket,
                        "condition": record.condition,
                        "surrogate": record.surrogate,
                        "seed": record.seed,
                        "level": record.level,
                        "true_label": record.true_label,
                        "clean_label": record.clean_label,
                        "clean_confidence": float(record.clean_confidence),
                        "model_label": record.model_label,
                        "model_confidence": float(record.model_confidence),
                        "model_probs": json.dumps([float(p) for p in record.model_probs]),
                        "linf": float(record.linf),
                        "l2": None if record.l2 is None else float(record.l2),
                        "queries": record.queries,
                        "query_budget": record.query_budget,
                        "flash_ms": record.flash_ms,
                        "defense_verdict": record.defense_verdict,
                        "certified_radius": record.certified_radius,
                        "clean_image": clean_path,
                        "shown_image": shown_path,
                        "clean_sha256": clean_sha,
                        "shown_sha256": shown_sha,
                    }
                )
            if on_advance is not None:
                on_advance(len(page))
        bundle.writestr("answers.csv", _csv_text(tuple(ANSWER_COLUMNS), answers))
        bundle.writestr("rounds.csv", _csv_text(tuple(ROUND_COLUMNS), rounds))
        groups = science.group_stats(trials, science.DEFAULT_GROUP_BY)
        stats = {
            "group_by": list(science.DEFAULT_GROUP_BY),
            "filters": {name: filter_labels.get(name) for name in _FILTER_NAMES},
            "groups": [group.as_dict() for group in groups],
        }
        bundle.writestr("stats.json", json.dumps(stats, indent=2) + "\n")
        summary = {
            "exported_at": _iso(datetime.now(UTC)),
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


_FILTER_NAMES = ("event", "pack", "opponent", "attack", "condition", "since", "until")

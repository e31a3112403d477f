"""The standard AutoAttack row in resumable chunks, for opponents where one image costs minutes (Defense-GAN).

The images run ``chunk`` at a time, in order; each chunk is attacked with its own seed (the row's seed plus the
chunk's first test index), so any chunk reproduces on its own, and a run that stopped part way resumes at the
first chunk not yet done and ends where an uninterrupted run would. Each finished chunk is appended to a
partial-results file next to the card (``<opponent>.autoattack.json``): per test image whether it is correct clean,
whether it survived, which attack of the ensemble broke it, and per chunk its seconds and the images the attacked
view was asked to classify (the queries). The card's row is computed from every chunk done so far, with n the
images done.

The ensemble runs as torchattacks' MultiAttack runs it (each attack on the images the ones before left correct),
with one difference in where success is checked: every candidate adversarial image is classified by the deployed
model, so an image counts as broken only if the defense players meet gets it wrong. That lets the attack query a
cheaper view (:func:`query_view`: for Defense-GAN the batched projection, equal to the per-image one up to the
last bits) while the row still measures the deployed defense.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from app.ml.defenses.base import attack_view
from app.ml.defenses.defense_gan import DefenseGAN
from app.ml.measure.autoattack import AUTOATTACK, AUTOATTACK_LABEL, autoattack_note, build_autoattack
from app.ml.model import ArenaModel

logger = logging.getLogger(__name__)

PARTIAL_SCHEMA = 1
CLEAN_WRONG = "clean"  # what "broken_by" says of an image the model gets wrong before any attack


def query_view(model: ArenaModel, *, batched: bool) -> ArenaModel:
    """What the attack queries and differentiates: the BPDA view, batched where the model has a batched one."""
    if batched and isinstance(model, DefenseGAN):
        return model.batched_straight_through()
    return attack_view(model)


def partial_path(models_dir: Path, name: str) -> Path:
    return Path(models_dir) / f"{name}.autoattack.json"


def chunk_seed(seed: int, first_index: int) -> int:
    return seed + first_index


@dataclass(frozen=True)
class ChunkPlan:
    """What a partial file was measured with: resuming with anything else would mix two different rows."""

    opponent: str
    eps: float
    seed: int
    chunk: int
    batched_view: bool

    def header(self) -> dict[str, Any]:
        return {
            "schema_version": PARTIAL_SCHEMA,
            "opponent": self.opponent,
            "eps": self.eps,
            "seed": self.seed,
            "chunk": self.chunk,
            "batched_view": self.batched_view,
        }


def attack_chunk(
    model: ArenaModel,
    images: Tensor,
    labels: Tensor,
    eps: float,
    seed: int,
    *,
    batched_view: bool,
    square_queries: int | None = None,
) -> dict[str, Any]:
    """Standard AutoAttack on one chunk: per image clean correct, robust and the attack that broke it, plus the
    number of images the attacked view classified (queries) and seconds per component. ``square_queries`` cuts
    Square's 5,000 queries (for timing only: the row always runs the standard ensemble)."""
    started = time.perf_counter()
    view = query_view(model, batched=batched_view)
    attack = build_autoattack(model, eps, seed, view)
    component_s: dict[str, float] = {}
    queries = {"images": 0}

    def count(_module: torch.nn.Module, inputs: tuple[Tensor, ...]) -> None:
        queries["images"] += int(inputs[0].shape[0])

    hook = view.register_forward_pre_hook(count)
    try:
        with torch.no_grad():
            clean_ok = (model(images).argmax(1) == labels).cpu()
        broken_by: list[str | None] = [None if ok else CLEAN_WRONG for ok in clean_ok.tolist()]
        left = torch.nonzero(clean_ok).flatten()
        for sub in attack._autoattack.attacks:  # torchattacks keeps the ensemble here; no public accessor
            if len(left) == 0:
                break
            if square_queries is not None and type(sub).__name__ == "Square":
                sub.n_queries = square_queries
            began = time.perf_counter()
            adv = sub(images[left], labels[left])
            with torch.no_grad():  # the deployed model judges, whatever view the attack queried
                still = (model(adv).argmax(1) == labels[left]).cpu()
            for i in left[~still].tolist():
                broken_by[i] = type(sub).__name__
            left = left[still]
            component_s[type(sub).__name__] = round(time.perf_counter() - began, 1)
    finally:
        hook.remove()
    return {
        "clean_correct": clean_ok.tolist(),
        "robust": [b is None for b in broken_by],
        "broken_by": broken_by,
        "queries": queries["images"],
        "seconds": round(time.perf_counter() - started, 1),
        "component_seconds": component_s,
    }


def load_partial(path: Path, plan: ChunkPlan) -> dict[str, Any]:
    """The chunks done so far under ``plan`` (none if the file does not exist); a file measured otherwise is an
    error, not something to resume."""
    if not path.exists():
        return {**plan.header(), "chunks": []}
    done: dict[str, Any] = json.loads(path.read_text())
    mismatched = {k: (done.get(k), v) for k, v in plan.header().items() if done.get(k) != v}
    if mismatched:
        detail = ", ".join(f"{k}: file {a!r}, asked {b!r}" for k, (a, b) in mismatched.items())
        raise ValueError(f"{path} was measured with other settings ({detail}); move it away to start afresh")
    return done


def run_chunks(
    model: ArenaModel,
    images: Tensor,
    labels: Tensor,
    plan: ChunkPlan,
    path: Path,
    *,
    after_chunk: Callable[[dict[str, Any]], None] | None = None,
    max_chunks: int | None = None,
) -> dict[str, Any]:
    """Attack the chunks of ``images`` not yet in ``path``, in order, writing the file after each one; stops after
    ``max_chunks`` new chunks if given. ``after_chunk`` gets the partial results after each chunk is written."""
    partial = load_partial(path, plan)
    done_starts = {c["start"] for c in partial["chunks"]}
    ran = 0
    for start in range(0, len(labels), plan.chunk):
        if start in done_starts:
            continue
        if max_chunks is not None and ran >= max_chunks:
            break
        stop = min(start + plan.chunk, len(labels))
        seed = chunk_seed(plan.seed, start)
        result = attack_chunk(
            model, images[start:stop], labels[start:stop], plan.eps, seed, batched_view=plan.batched_view
        )
        partial["chunks"].append(
            {"start": start, "stop": stop, "seed": seed, "threads": torch.get_num_threads(), **result}
        )
        partial["chunks"].sort(key=lambda c: c["start"])
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(partial, indent=1) + "\n")
        tmp.replace(path)  # a run killed mid-write leaves the previous file whole
        ran += 1
        if after_chunk is not None:
            after_chunk(partial)
    return partial


def done_prefix(partial: dict[str, Any]) -> list[dict[str, Any]]:
    """The chunks that cover test images 0..k-1 without a gap (the row reports the first k images)."""
    out, expected = [], 0
    for c in sorted(partial["chunks"], key=lambda c: c["start"]):
        if c["start"] != expected:
            break
        out.append(c)
        expected = c["stop"]
    return out


def row_figures(partial: dict[str, Any]) -> dict[str, Any]:
    """Accuracy, success rate, images done, seconds and which attack broke how many, over the chunks done."""
    chunks = done_prefix(partial)
    clean = [ok for c in chunks for ok in c["clean_correct"]]
    robust = [r for c in chunks for r in c["robust"]]
    broken = [b for c in chunks for b in c["broken_by"] if b not in (None, CLEAN_WRONG)]
    n, n_clean = len(robust), sum(clean)
    return {
        "n": n,
        "accuracy": sum(robust) / n if n else 0.0,
        "success_rate": (n_clean - sum(robust)) / n_clean if n_clean else 0.0,
        "clean_accuracy": n_clean / n if n else 0.0,
        "time_s": round(sum(c["seconds"] for c in chunks), 1),
        "queries": sum(c["queries"] for c in chunks),
        "broken_by": {kind: broken.count(kind) for kind in dict.fromkeys(broken)},
    }


def chunked_note(model: ArenaModel, plan: ChunkPlan, command: str) -> dict[str, str]:
    """What a chunked row adds to (or says instead of) the AutoAttack note: its seeding, view and resumption."""
    batched = plan.batched_view and isinstance(model, DefenseGAN)
    view = (
        "BPDA view of the defense with the projection of all queried images at once (the batched descents, equal to "
        "the deployed per-image projection up to the last bits, and cheaper per query); every candidate adversarial "
        "image is then classified by the deployed model (per-image projection), and only what it gets wrong counts"
        if batched
        else "BPDA view of the defense (its transform forward, the identity backward); every candidate adversarial "
        "image is classified by the deployed model, and only what it gets wrong counts"
    )
    return {
        "attacked_view": view,
        "seeding": f"in chunks of {plan.chunk} images, each seeded with seed + its first test index (seed {plan.seed})",
        "resume": f"resumable with `{command}`",
    }


def chunked_row(
    model: ArenaModel,
    partial: dict[str, Any],
    plan: ChunkPlan,
    *,
    role: str,
    params: dict[str, Any],
    n_planned: int,
    command: str,
) -> dict[str, Any] | None:
    """The card's AutoAttack row over the chunks done so far (None before the first), saying how far it got and
    the command that resumes it."""
    figures = row_figures(partial)
    if figures["n"] == 0:
        return None
    row: dict[str, Any] = {"role": role, "attack": AUTOATTACK, "params": dict(params), "eps": plan.eps, **figures}
    row["label"] = AUTOATTACK_LABEL
    row.update(autoattack_note(model, plan.eps, plan.seed, f"{plan.seed} + each chunk's first test index"))
    note = chunked_note(model, plan, command)
    row.update({k: note[k] for k in ("attacked_view", "seeding")})
    row["subset"] = f"first {figures['n']:,} of {n_planned:,} test images, in chunks of {plan.chunk} ({note['resume']})"
    row["measured"] = datetime.now(UTC).date().isoformat()
    row["command"] = command
    logger.info("%s AutoAttack over %d images: %s", plan.opponent, figures["n"], figures)
    return row

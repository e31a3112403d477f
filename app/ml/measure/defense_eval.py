"""``arena defense-eval``: the defense lab's measurements for one defended opponent, written into its card.

Each opponent has a fixed plan of rows (:data:`LAB_PLANS`): the attack a naive attacker would use, the attack
that is adaptive to the defense (BPDA through a squeezer, a margin loss against a saturated softmax, the
detector's score in the loss), for the trained defenses the per-image worst case of APGD-CE and APGD-DLR, and for
every opponent the standard AutoAttack at the headline budget (:mod:`app.ml.measure.autoattack`): the strongest
row by RobustBench's convention. Every row is measured on the first ``n`` test images (n >= 1,000; an AutoAttack
row alone may run on fewer, and then its row says so), says how, and names the command that reproduces it alone
(``--row ID``). For a defense with a detector, a row also gives the share of successful adversarial images the
detector flags and the share that get through unflagged; the clean false positive rate is in the card.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from app.config import get_settings
from app.ml.attacks import get_attack
from app.ml.defenses.base import InputDefense
from app.ml.defenses.certified import CertifiedModel
from app.ml.measure.autoattack import AUTOATTACK, AUTOATTACK_LABEL, autoattack_batch, autoattack_note
from app.ml.measure.autoattack_chunks import ChunkPlan, chunked_row, partial_path, run_chunks
from app.ml.measure.evaluation import EVAL_BATCH, clean_predictions, per_image_generators, progress_bar
from app.ml.model import ArenaModel
from app.ml.opponents import cards
from app.ml.opponents.registry import load_opponent
from app.ml.opponents.specs import opponent_spec
from app.ml.packs import get_pack
from app.ml.training.certified import ensure_certified_section

logger = logging.getLogger(__name__)

MIN_N = 1000
APGD = "apgd-ce+dlr"  # not a registry attack: torchattacks' APGD, run twice, worst case per image
# What the table shows for the attacks that are not registry attacks: exactly what ran.
ATTACK_LABELS = {
    APGD: "APGD-CE + APGD-DLR, 1 restart each, worst case per image (torchattacks)",
    AUTOATTACK: AUTOATTACK_LABEL,
}
# Every defended opponent is headlined at eps 0.1 (25.5/255): the budget PGD-AT and IBP trained for, and the one
# each card's other rows centre on. The standard AutoAttack row runs there.
HEADLINE_EPS = 0.1

# row id -> (role, attack, params, eps). role: naive (what an attacker unaware of the defense runs), adaptive
# (an attack that accounts for the defense; rounds use one), strongest (the standard AutoAttack: RobustBench's
# convention for a model's robust accuracy; an adaptive row may still go lower against a defense it was built for).
Row = tuple[str, str, dict[str, Any], float]
_MAGNET_TRANSFER: dict[str, Any] = {"surrogate": "fashion-cnn", "base": "pgd", "steps": 10}
# Detector weight 1 (the score is in units of the threshold) got the most images past the L1 detector of weights
# 1, 3 and 10, tried on test images 0..199 at eps 0.1 and 0.05 (evaded 90.0% and 55.5%); larger weights give up
# fooling for hiding, and few images are flagged at weight 1 already.
_MAGNET_ADAPTIVE: dict[str, Any] = {"steps": 10, "loss": "margin", "detector_weight": 1.0}
LAB_PLANS: dict[str, dict[str, Row]] = {
    "fashion-robust": {
        "fgsm-0.1": ("naive", "fgsm", {}, 0.1),
        "pgd20-0.05": ("adaptive", "pgd", {"steps": 20}, 0.05),
        "pgd40-0.1": ("adaptive", "pgd", {"steps": 40}, 0.1),
        "apgd-0.1": ("adaptive", APGD, {"steps": 100}, 0.1),
        "pgd20-0.2": ("adaptive", "pgd", {"steps": 20}, 0.2),
        # More budgets for the lab's accuracy-vs-eps curves.
        "fgsm-0.05": ("naive", "fgsm", {}, 0.05),
        "fgsm-0.2": ("naive", "fgsm", {}, 0.2),
        "pgd40-0.05": ("adaptive", "pgd", {"steps": 40}, 0.05),
        "pgd40-0.2": ("adaptive", "pgd", {"steps": 40}, 0.2),
    },
    "fashion-distilled": {
        "fgsm-0.1": ("naive", "fgsm", {}, 0.1),
        "pgd20-0.1": ("naive", "pgd", {"steps": 20}, 0.1),
        "bpda-margin-0.1": ("adaptive", "bpda-pgd", {"steps": 20, "loss": "margin"}, 0.1),
        "cw-l2": ("adaptive", "cw", {"steps": 100, "binary_search_steps": 4}, 28.0),
        "bpda-margin-0.05": ("adaptive", "bpda-pgd", {"steps": 20, "loss": "margin"}, 0.05),
        "fgsm-0.05": ("naive", "fgsm", {}, 0.05),
        "fgsm-0.2": ("naive", "fgsm", {}, 0.2),
        "pgd20-0.05": ("naive", "pgd", {"steps": 20}, 0.05),
        "pgd20-0.2": ("naive", "pgd", {"steps": 20}, 0.2),
        "bpda-margin-0.2": ("adaptive", "bpda-pgd", {"steps": 20, "loss": "margin"}, 0.2),
    },
    "fashion-squeezed": {
        "pgd10-0.1": ("naive", "pgd", {"steps": 10}, 0.1),
        "bpda-0.1": ("adaptive", "bpda-pgd", {"steps": 10}, 0.1),
        "bpda-det-0.1": ("adaptive", "bpda-pgd", {"steps": 10, "loss": "margin", "detector_weight": 1.0}, 0.1),
        "pgd10-0.05": ("naive", "pgd", {"steps": 10}, 0.05),
        "bpda-det-0.05": ("adaptive", "bpda-pgd", {"steps": 10, "loss": "margin", "detector_weight": 1.0}, 0.05),
        "pgd10-0.02": ("naive", "pgd", {"steps": 10}, 0.02),
        "pgd10-0.2": ("naive", "pgd", {"steps": 10}, 0.2),
        "bpda-det-0.02": ("adaptive", "bpda-pgd", {"steps": 10, "loss": "margin", "detector_weight": 1.0}, 0.02),
        "bpda-det-0.2": ("adaptive", "bpda-pgd", {"steps": 10, "loss": "margin", "detector_weight": 1.0}, 0.2),
    },
    "fashion-jpeg": {
        "pgd10-0.1": ("naive", "pgd", {"steps": 10}, 0.1),
        "bpda-0.1": ("adaptive", "bpda-pgd", {"steps": 10}, 0.1),
        "bpda-0.05": ("adaptive", "bpda-pgd", {"steps": 10}, 0.05),
        "pgd10-0.05": ("naive", "pgd", {"steps": 10}, 0.05),
        "pgd10-0.2": ("naive", "pgd", {"steps": 10}, 0.2),
        "bpda-0.02": ("adaptive", "bpda-pgd", {"steps": 10}, 0.02),
        "bpda-0.2": ("adaptive", "bpda-pgd", {"steps": 10}, 0.2),
    },
    # Naive: PGD crafted on the bare fashion-cnn and shown to MagNet (the oblivious attacker Meng & Chen measured).
    # The reformer is differentiable, so plain PGD already goes through it; bpda-pgd on MagNet differentiates the
    # real autoencoder too (its straight_through() is itself) and adds the detector's score to the loss.
    "fashion-magnet": {
        "transfer-0.1": ("naive", "transfer", _MAGNET_TRANSFER, 0.1),
        "pgd10-0.1": ("adaptive", "pgd", {"steps": 10}, 0.1),
        "pgd-det-0.1": ("adaptive", "bpda-pgd", _MAGNET_ADAPTIVE, 0.1),
        "transfer-0.05": ("naive", "transfer", _MAGNET_TRANSFER, 0.05),
        "pgd10-0.05": ("adaptive", "pgd", {"steps": 10}, 0.05),
        "pgd-det-0.05": ("adaptive", "bpda-pgd", _MAGNET_ADAPTIVE, 0.05),
    },
    # Nothing is masked (an ordinary differentiable net), so plain PGD is already adaptive; each row also says
    # how many of the same images IBP certifies at its eps, which the attack can never beat.
    "fashion-certified": {
        "fgsm-0.1": ("naive", "fgsm", {}, 0.1),
        "pgd40-0.1": ("adaptive", "pgd", {"steps": 40}, 0.1),
        "apgd-0.1": ("adaptive", APGD, {"steps": 100}, 0.1),
        "pgd40-0.15": ("adaptive", "pgd", {"steps": 40}, 0.15),
    },
    # Naive: PGD on the deployed model (the projection runs outside autograd, so its gradient is zero), and PGD on
    # the undefended fashion-cnn shown to the defended one (the threat Defense-GAN was built for). Adaptive: BPDA
    # (identity backward pass: poor here, the projection moves clean images far) and PGD through the unrolled
    # projection (every Adam step on z recorded and differentiated), the one that breaks it.
    "fashion-defgan": {
        "pgd10-0.1": ("naive", "pgd", {"steps": 10}, 0.1),
        "transfer-0.1": ("naive", "transfer", {"surrogate": "fashion-cnn", "base": "pgd", "steps": 10}, 0.1),
        "bpda-0.1": ("adaptive", "bpda-pgd", {"steps": 10}, 0.1),
        "bpda-0.05": ("adaptive", "bpda-pgd", {"steps": 10}, 0.05),
        "bpda-0.2": ("adaptive", "bpda-pgd", {"steps": 10}, 0.2),
        "unrolled-0.1": ("adaptive", "unrolled-pgd", {"steps": 10}, 0.1),
        "unrolled-0.05": ("adaptive", "unrolled-pgd", {"steps": 10}, 0.05),
        "unrolled-0.2": ("adaptive", "unrolled-pgd", {"steps": 10}, 0.2),
        "unrolled40-0.1": ("adaptive", "unrolled-pgd", {"steps": 40}, 0.1),
    },
}
AUTOATTACK_ROW_ID = f"autoattack-{HEADLINE_EPS:g}"
for _plan in LAB_PLANS.values():
    _plan[AUTOATTACK_ROW_ID] = ("strongest", AUTOATTACK, {"version": "standard"}, HEADLINE_EPS)

# What a game round against each defended opponent should run: the adaptive attack (the lead wires rounds to it).
ROUND_ATTACKS: dict[str, dict[str, Any]] = {
    "fashion-robust": {"attack": "pgd", "params": {"steps": 40}},
    "fashion-distilled": {"attack": "bpda-pgd", "params": {"steps": 20, "loss": "margin"}},
    "fashion-jpeg": {"attack": "bpda-pgd", "params": {"steps": 10}},
    "fashion-certified": {"attack": "pgd", "params": {"steps": 40}},
    "fashion-defgan": {"attack": "unrolled-pgd", "params": {"steps": 10}},
    "fashion-squeezed": {
        "attack": "bpda-pgd",
        "params": {"steps": 10, "loss": "margin", "detector_weight": 1.0},
    },
    "fashion-magnet": {"attack": "bpda-pgd", "params": dict(_MAGNET_ADAPTIVE)},
}


def lab_command(name: str, row: str | None = None) -> str:
    return f"arena defense-eval --opponent {name}" + (f" --row {row}" if row else "")


def _apgd(model: ArenaModel, images: Tensor, labels: Tensor, eps: float, steps: int, seed: int) -> Tensor:
    """Correct-after-attack mask: per image, the worse of APGD-CE and APGD-DLR (torchattacks, 1 restart each)."""
    import torchattacks  # optional: the APGD rows need it, the rest of the lab does not

    survived = torch.ones(len(labels), dtype=torch.bool)
    for loss in ("ce", "dlr"):
        attack = torchattacks.APGD(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, seed=seed, loss=loss)
        adv = attack(images, labels)
        with torch.no_grad():
            survived &= (model(adv).argmax(1) == labels).cpu()
    return survived


def measure_row(
    model: ArenaModel, row: Row, images: Tensor, labels: Tensor, *, seed: int = 0, progress: bool = False
) -> dict[str, Any]:
    """One lab row on ``images``: accuracy after the attack and, for a detector, flagged and unflagged shares."""
    role, attack_name, params, eps = row
    n = len(labels)
    clean_ok = clean_predictions(model, images) == labels
    correct, flagged, l2 = [], [], []
    started = time.perf_counter()
    with progress_bar(progress) as bar:
        task = bar.add_task(f"{model.name} {attack_name} eps={eps:g}", total=n)
        for start in range(0, n, EVAL_BATCH):
            sl = slice(start, min(start + EVAL_BATCH, n))
            x, y = images[sl].to(model.device), labels[sl].to(model.device)
            if attack_name == APGD:
                correct.append(_apgd(model, x, y, eps, int(params["steps"]), seed))
                adv = None
            elif attack_name == AUTOATTACK:
                adv = autoattack_batch(model, x, y, eps, seed)
                with torch.no_grad():
                    correct.append((model(adv).argmax(1) == y).cpu())
            else:
                gens = per_image_generators(range(sl.start, sl.stop), seed)
                result = get_attack(attack_name, **params)(model, x, y, eps, generator=gens)
                adv = result.adversarial
                correct.append((result.logits.argmax(1) == y).cpu())
                l2.append(result.l2.cpu())
            if isinstance(model, InputDefense) and model.has_detector and adv is not None:
                flagged.append(model.detect(adv).cpu())
            bar.advance(task, sl.stop - sl.start)
    still = torch.cat(correct) & clean_ok
    fooled = clean_ok & ~still
    out: dict[str, Any] = {
        "role": role,
        "attack": attack_name,
        "params": dict(params),
        "eps": eps,
        "n": n,
        "accuracy": still.float().mean().item(),
        "success_rate": (fooled.sum() / clean_ok.sum().clamp_min(1)).item(),
        "time_s": round(time.perf_counter() - started, 1),
    }
    if attack_name == "cw":
        dist = torch.cat(l2)[fooled]
        out["median_l2_of_successes"] = dist.median().item() if len(dist) else None
    if flagged:
        flag = torch.cat(flagged)
        out["detected_of_fooled"] = (flag[fooled].float().mean().item()) if bool(fooled.any()) else 0.0
        # Correct, or wrong but rejected: what the defended system gets right once the detector is counted.
        out["accuracy_with_detector"] = (still | (flag & ~still)).float().mean().item()
        out["evaded"] = (fooled & ~flag).float().mean().item()
    if isinstance(model, CertifiedModel) and eps < 1:
        # Soundness check: a certified image cannot be fooled, so accuracy must be at least this share.
        proved = torch.cat(
            [model.certifies(images[i : i + 500], labels[i : i + 500], eps).cpu() for i in range(0, n, 500)]
        )
        out["certified_accuracy"] = proved.float().mean().item()
        out["certified_fooled"] = int((proved & ~still).sum())
    if attack_name in ATTACK_LABELS:
        out["label"] = ATTACK_LABELS[attack_name]
    if attack_name == APGD:
        out["implementation"] = "torchattacks.APGD, loss ce then dlr, 1 restart each, worst case per image"
    if attack_name == AUTOATTACK:
        # Its own subset and clean accuracy: it may run on fewer images than the rest of the lab.
        out.update(autoattack_note(model, eps, seed))
        out["subset"] = f"first {n} test images"
        out["clean_accuracy"] = clean_ok.float().mean().item()
        out["measured"] = datetime.now(UTC).date().isoformat()
    return out


def evaluate_defense(
    name: str,
    *,
    rows: Sequence[str] | None = None,
    n: int = MIN_N,
    seed: int = 0,
    models_dir: Path | None = None,
    data_dir: Path | None = None,
    progress: bool = True,
    threads: int | None = None,
    chunk: int | None = None,
    max_chunks: int | None = None,
) -> dict[str, Any]:
    """Measure ``name``'s lab rows (all, or the ids in ``rows``) and merge them into its card's ``defense_lab``.

    With ``chunk``, the one AutoAttack row runs resumably ``chunk`` images at a time
    (:mod:`app.ml.measure.autoattack_chunks`), its row rewritten from every chunk done after each one."""
    if name not in LAB_PLANS:
        raise ValueError(f"{name!r} has no defense-lab plan; choose one of: {', '.join(sorted(LAB_PLANS))}")
    plan = LAB_PLANS[name]
    wanted = list(plan) if not rows else list(rows)
    unknown = [r for r in wanted if r not in plan]
    if unknown:
        raise ValueError(f"unknown row(s) {', '.join(unknown)} for {name}; choose from: {', '.join(plan)}")
    short_ok = all(plan[r][1] == AUTOATTACK for r in wanted)
    if n < MIN_N and not (short_ok and n >= 1):
        raise ValueError(
            f"n must be at least {MIN_N} (the lab reports no number on fewer images; only an AutoAttack row alone "
            f"may run on fewer, and its row then states its n), got {n}"
        )
    if chunk is not None and (chunk < 1 or wanted != [AUTOATTACK_ROW_ID]):
        raise ValueError(f"--chunk needs a positive size and the AutoAttack row alone (--row {AUTOATTACK_ROW_ID})")
    models_dir = Path(models_dir) if models_dir is not None else get_settings().models_dir
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        model = load_opponent(name, models_dir=models_dir)
        if isinstance(model, CertifiedModel):
            ensure_certified_section(model, models_dir, data_dir, lab_command(name))
        images, labels = get_pack(opponent_spec(name).pack_name, data_dir).tensors("test", n=n)
        if chunk is not None:
            _run_chunked(model, name, images, labels, models_dir, seed=seed, chunk=chunk, max_chunks=max_chunks)
            return cards.read_card(cards.card_path(models_dir, name))
        measured = {}
        for row_id in wanted:
            result = measure_row(model, plan[row_id], images, labels, seed=seed, progress=progress)
            result["command"] = lab_command(name, row_id)
            measured[row_id] = result
            logger.info("%s %s: %s", name, row_id, result)
            _merge(models_dir, name, measured, n, seed, images, labels, model)
    finally:
        torch.set_num_threads(old_threads)
    return cards.read_card(cards.card_path(models_dir, name))


def _run_chunked(
    model: ArenaModel,
    name: str,
    images: Tensor,
    labels: Tensor,
    models_dir: Path,
    *,
    seed: int,
    chunk: int,
    max_chunks: int | None,
) -> None:
    """The AutoAttack row in resumable chunks; the card's row is rewritten from the partial file after each."""
    if isinstance(model, InputDefense) and model.has_detector:
        raise ValueError(f"{name} has a detector; a chunked AutoAttack row does not count its flags (run it whole)")
    role, _, params, eps = LAB_PLANS[name][AUTOATTACK_ROW_ID]
    plan = ChunkPlan(opponent=name, eps=eps, seed=seed, chunk=chunk, batched_view=True)
    command = f"{lab_command(name, AUTOATTACK_ROW_ID)} --n {len(labels)} --chunk {chunk}"
    path = partial_path(models_dir, name)

    def write_row(partial: dict[str, Any]) -> None:
        row = chunked_row(model, partial, plan, role=role, params=params, n_planned=len(labels), command=command)
        if row is not None:
            row["partial_results"] = path.name
            _merge(models_dir, name, {AUTOATTACK_ROW_ID: row}, len(labels), seed, images, labels, model)

    write_row(run_chunks(model, images, labels, plan, path, after_chunk=write_row, max_chunks=max_chunks))


def _merge(
    models_dir: Path,
    name: str,
    measured: dict[str, dict[str, Any]],
    n: int,
    seed: int,
    images: Tensor,
    labels: Tensor,
    model: ArenaModel,
) -> None:
    """Write the rows measured so far into the card (after every row, so an interrupted run keeps them).

    Under an exclusive lock (a file in the temp folder, keyed by the card's path), so runs of different rows in
    parallel do not drop each other's rows.
    """
    key = hashlib.sha256(str(cards.card_path(models_dir, name).resolve()).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"arena-defense-lab-{key}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            card = cards.read_card(cards.card_path(models_dir, name))
            lab = card.get("defense_lab") or {"rows": {}}
            lab["rows"].update(measured)
            lab["rows"] = {k: _relabel(LAB_PLANS[name][k], lab["rows"][k]) for k in LAB_PLANS[name] if k in lab["rows"]}
            # AutoAttack rows alone keep the lab's header (date, images, clean accuracy): they carry their own.
            if "n" in lab and all(LAB_PLANS[name][k][1] == AUTOATTACK for k in measured):
                card["defense_lab"] = lab
                cards.write_card(card, models_dir, name)
                return
            lab.update(
                {
                    "command": lab_command(name),
                    "measured": datetime.now(UTC).date().isoformat(),
                    "subset": f"first {n} test images",
                    "n": n,
                    "seed": seed,
                    "seeding": f"random starts seeded per image with seed + test index (seed {seed})",
                    "clean_accuracy": (clean_predictions(model, images) == labels).float().mean().item(),
                    "accuracy_means": "share of the n images the model classifies correctly after the attack (an image "
                    "it gets wrong clean counts as wrong)",
                    "success_rate_means": "share of the images it classifies correctly clean that the attack fools",
                }
            )
            card["defense_lab"] = lab
            card["adaptive_attack"] = {
                **ROUND_ATTACKS[name],
                "why": "it adapts to the defense, so the game never shows the defense as stronger than it is",
            }
            cards.write_card(card, models_dir, name)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _relabel(planned: Row, row: dict[str, Any]) -> dict[str, Any]:
    """A measured row with the plan's current role and label (words only: its figures are left as measured)."""
    role, attack_name = planned[0], planned[1]
    out = {**row, "role": role}
    if attack_name in ATTACK_LABELS:
        out["label"] = ATTACK_LABELS[attack_name]
    return out

"""The bundle's two CSV files, answers.csv and rounds.csv: their documented columns and one row of each per trial,
cell by cell as the files hold them (empty for None, 1/0 for booleans, floats at full precision)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from app.db.tables import RoundRecord
from app.stats.export import iso_utc
from app.stats.trials import Trial

ANSWER_COLUMNS: dict[str, str] = {
    "answer_id": "Unique id of the answer.",
    "answered_at": "When the answer was stored, ISO 8601 in UTC.",
    "player_id": "Pseudonym of the person: the same for all their rows in this bundle, different in every other "
    "bundle and unrelated to the player ids the server shows (no nickname or other personal data is exported).",
    "round_id": "The round answered; joins rounds.csv.",
    "shared_image": "Id of the together image when everyone in an event saw the same image at once; empty otherwise.",
    "event": "Join code of the workshop event; empty for play outside events.",
    "item_id": "Fixed-set events: the item (image) of the event's set; every person of the event saw the same items, "
    "each once, in their own random order, so rows with the same item_id are answers to the very same pixels. "
    "Empty for fresh images.",
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
    "shown_image": "Path in this bundle of the image the person saw (PNG, exactly the stored pixels); empty for "
    "text rounds.",
    "kind": "image, or text for a text round (a WordNet definition to classify; pack definitions).",
    "original_text": "Text rounds: the definition as written (the defined word blanked as ___); empty for images.",
    "shown_text": "Text rounds: the definition the person read (after the attack or the control's swaps).",
}

ROUND_COLUMNS: dict[str, str] = {
    "round_id": "Unique id of the round (one image shown to one person).",
    "created_at": "When the image was made and stored, ISO 8601 in UTC.",
    "player_id": "Pseudonym of the person it was shown to (as in answers.csv).",
    "event": "Join code of the workshop event; empty outside events.",
    "phase": "Phase of the event (0-based); empty outside events.",
    "shared_image": "Id of the together image this round is a copy of; empty otherwise.",
    "item_id": "Fixed-set events: the item of the event's set this round showed (see answers.csv); empty otherwise.",
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
    "steps_run": "Gradient steps the attack took on this image (PGD): fewer than attack_params' steps when it "
    "stopped early because the shown image already fooled the model; empty for attacks that count no steps.",
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
    "kind": "image, or text for a text round (norm words: eps is the share of words the attack could change, linf "
    "the share that changed, image_index the test text's index in the definitions pack).",
    "original_text": "Text rounds: the definition as written; empty for images.",
    "shown_text": "Text rounds: the definition as shown.",
    "changed_words": "Text rounds: JSON list of the positions (among the words) that differ between the two texts.",
    "n_words": "Text rounds: words in the definition.",
    "similarity": "Text rounds: all-MiniLM-L6-v2 cosine between the original and the shown text.",
}


def bundle_cell(value: Any) -> Any:
    """Empty for None, 1/0 for booleans, floats at full precision (repr), anything else as it is."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return value


def csv_text(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([bundle_cell(row[c]) for c in columns])
    return buffer.getvalue()


def answer_row(
    trial: Trial, record: RoundRecord, names: Sequence[str], person: str, images: tuple[str, str]
) -> dict[str, Any]:
    """One row of answers.csv: the trial under the person's pseudonym, its classes by name and where its two images
    (clean, shown) are in the bundle."""
    clean_path, shown_path = images
    return {
        "answer_id": trial.answer_id,
        "answered_at": iso_utc(trial.answered_at),
        "player_id": person,
        "round_id": trial.round_id,
        "shared_image": trial.shared_image,
        "event": trial.event,
        "item_id": record.item_id,
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
        "kind": record.kind,
        "original_text": record.original_text,
        "shown_text": record.shown_text,
    }


def round_row(
    trial: Trial, record: RoundRecord, person: str, clean: tuple[str, str], shown: tuple[str, str]
) -> dict[str, Any]:
    """One row of rounds.csv: how the trial's image was made, under the person's pseudonym; ``clean`` and ``shown``
    are (path, sha256)."""
    clean_path, clean_sha = clean
    shown_path, shown_sha = shown
    return {
        "round_id": record.id,
        "created_at": iso_utc(record.created_at),
        "player_id": person,
        "event": trial.event,
        "phase": record.phase,
        "shared_image": record.shared_round_id,
        "item_id": record.item_id,
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
        "steps_run": record.steps_run,
        "flash_ms": record.flash_ms,
        "defense_verdict": record.defense_verdict,
        "certified_radius": record.certified_radius,
        "clean_image": clean_path,
        "shown_image": shown_path,
        "clean_sha256": clean_sha,
        "shown_sha256": shown_sha,
        "kind": record.kind,
        "original_text": record.original_text,
        "shown_text": record.shown_text,
        "changed_words": None if record.changed_words is None else json.dumps(list(record.changed_words)),
        "n_words": record.n_words,
        "similarity": record.similarity,
    }

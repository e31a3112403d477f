"""What the bundle says about itself: the definitions in metadata.json, the software that wrote it, and
DATASHEET.md (what was shown, how, to whom; consent)."""

from __future__ import annotations

import contextlib
import subprocess
from importlib import metadata as importlib_metadata
from typing import Any

from app.config import PROJECT_ROOT
from app.stats.consistency import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from app.stats.trials import EPS_BUCKET_DOC


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
        "kappa_interval": f"Percentile bootstrap, {BOOTSTRAP_RESAMPLES} resamples from Python "
        f"random.Random({BOOTSTRAP_SEED}) (fresh per interval). A resample of m items is one getrandbits(32*m) call "
        "read as m 32-bit words, lowest first; word u draws item (u*m) >> 32. People vs model resample trials (in "
        "the order both right, person only, model only, both wrong); by person: resample the people's kappas "
        "(people ordered by their smallest answer_id), running-sum mean; people vs people resample together images "
        "(sorted by id; pairs of people in the order above, running-sum mean). 2.5th and 97.5th percentiles, "
        "linear interpolation; undefined resamples dropped.",
        "model_accuracy": "The model on the same answered rounds as the people (a together image counts once per "
        "person who answered it).",
        "item_set": "Fixed-set events (rows with an item_id): the event made its set of images once and showed every "
        "person each item once, in an order of their own (a hash of event, person and item); the items' budgets "
        "take the event's levels in turn. Answers to one item are answers to the same stored pixels, so agreement "
        "between people can be computed per item (the server's app/stats/agreement.py: per-item accuracy, pairwise "
        "agreement and Fleiss' kappa with a percentile-bootstrap interval over items).",
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
plain play, or the host's settings in events. Guess-the-machine rounds (not in this bundle) ask instead which of
two labels the machine gave: always the truth and one wrong label (the machine's answer when it was fooled, its
runner-up when it was not), so the pair offered does not give away whether the machine was fooled. In a
fixed-set event (rows with an `item_id`) every person saw the same set of images, each once, in their own random
order; elsewhere every round is a fresh image.

## To whom
Whoever played: visitors of the game and participants of workshop events. People chose a nickname; nothing else
is asked (no e-mail, age, vision or other demographics). The bundle identifies people only by a pseudonym
(`player_id`: a keyed hash of the server's player id under a random key made for this bundle and kept nowhere), the
same for all of a person's rows here, different in every other bundle and unrelated to the ids the game's public
leaderboard shows; nicknames are left out. The sample is self-selected and not representative of any population.

## Consent
The game stores nicknames and answers only, no personal data. The operator of this server is responsible for
telling players that their answers may be used for research and for obtaining any consent their institution or
jurisdiction requires before publishing or sharing this bundle.

## Recomputing the figures
`python3 recompute.py` (standard library only) prints the stats page's table from answers.csv;
`python3 recompute.py --check stats.json` compares it with the table the server computed at export.
"""

#!/usr/bin/env python3
"""Recompute the Adversarial Arena stats table from this bundle's answers.csv, with the Python standard library only
(Python 3.10 or newer).

    python3 recompute.py                               # the table, grouped as on the stats page
    python3 recompute.py --group-by attack,eps_bucket  # any comma-separated subset of the group keys
    python3 recompute.py --attack pgd --since 2026-11-20 --json
    python3 recompute.py --check stats.json            # compare with the table the server computed at export

Definitions (also in metadata.json):
* trial: one answered round; people and the model are scored on the same trials.
* eps bucket: L-inf and L0 budgets in whole grey levels, round(eps * 255), written 'linf:8/255'; L2 radii rounded to
  the nearest tenth, written 'l2:1.5'; text rounds' shares of words in whole percent, round(eps * 100), written
  'words:10%'.
* accuracy intervals: 95% Wilson score intervals.
* error consistency (Geirhos, Meding & Wichmann 2020): c_obs = fraction of trials where both observers are right
  or both wrong; c_exp = p1*p2 + (1-p1)*(1-p2); kappa = (c_obs - c_exp) / (1 - c_exp), undefined when c_exp = 1.
  People vs model: every answer is a trial (pooled over people). Each person vs model: kappa of every person
  against the model over their own trials, then the mean over people where it is defined. People vs people: kappa
  of every pair of people over the together images both answered, then the mean over pairs where it is defined.
* kappa intervals: percentile bootstrap (2.5th, 97.5th, linear interpolation), 1000 resamples, a fresh
  random.Random(2020) for each interval. A resample of m items is one rng.getrandbits(32 * m) call read as m 32-bit
  words, lowest first; word u draws item (u * m) >> 32. People vs model resample trials (standing in the order both
  right, person only, model only, both wrong), each person vs model resamples the people's kappas and sums them
  left to right, people vs people resample together images (sorted by id). Resamples where kappa is undefined are
  dropped. People are taken in the order of their smallest answer_id.

This is a second implementation of the server's app/stats/science.py, written from the definitions above; the
project's tests check that both give the same numbers on the same data.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import struct
import sys
from bisect import bisect_left
from collections import defaultdict
from itertools import accumulate
from pathlib import Path

GROUP_KEYS = ("condition", "eps_bucket", "attack", "opponent", "pack", "event")
DEFAULT_GROUP_BY = ("condition", "eps_bucket", "attack", "opponent")
RESAMPLES = 1000
SEED = 2020
Z_95 = 1.959963984540054


def eps_bucket(eps, norm):
    if norm in ("linf", "l0"):
        return f"{norm}:{round(eps * 255)}/255"
    if norm == "l2":
        return f"l2:{round(eps, 1):.1f}"
    if norm == "words":
        return f"words:{round(eps * 100)}%"
    raise ValueError(f"unknown norm {norm!r}")


def sort_value(key, value):
    if value is None:
        return (0, "", 0.0, "")
    if key == "eps_bucket":
        norm, _, size = value.partition(":")
        x = float(size.split("/")[0]) if norm in ("linf", "l0") else float(size.rstrip("%"))
        return (1, norm, x, value)
    return (1, "", 0.0, value)


def wilson(successes, n, z=Z_95):
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = (z / (1 + z2 / n)) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low, high = centre - half, centre + half
    if successes == 0:
        low = 0.0
    if successes == n:
        high = 1.0
    return (max(0.0, low), min(1.0, high))


def kappa(both_right, first_only, second_only, both_wrong):
    n = both_right + first_only + second_only + both_wrong
    if n <= 0:
        return None
    c_obs = (both_right + both_wrong) / n
    p1 = (both_right + first_only) / n
    p2 = (both_right + second_only) / n
    c_exp = p1 * p2 + (1 - p1) * (1 - p2)
    if c_exp >= 1.0:
        return None
    return (c_obs - c_exp) / (1 - c_exp)


def percentile(ordered, q):
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def interval(values):
    ordered = sorted(values)
    if len(ordered) < 2:
        return None
    return [percentile(ordered, 0.025), percentile(ordered, 0.975)]


def resample_words(rng, m):
    """One resample's m draws: m 32-bit words of one getrandbits call, lowest first (word u draws (u * m) >> 32)."""
    return struct.unpack(f"<{m}I", rng.getrandbits(32 * m).to_bytes(4 * m, "little"))


def running_sum(values):
    """Left to right, one addition at a time (the server's order; the built-in sum may compensate)."""
    total = 0.0
    for value in values:
        total += value
    return total


def people_vs_model(rows):
    cells = [0, 0, 0, 0]  # both right, person only, model only, both wrong
    for row in rows:
        cells[(0 if row["human_correct"] else 2) + (0 if row["model_correct"] else 1)] += 1
    value = kappa(*cells)
    ci = None
    if value is not None:
        rng = random.Random(SEED)
        n = len(rows)
        # Trials stand in cell order; (u * n) >> 32 < c exactly when u < ceil(c * 2**32 / n).
        bounds = [-(-(c << 32) // n) for c in accumulate(cells[:3])]
        draws = []
        for _ in range(RESAMPLES):
            words = sorted(resample_words(rng, n))
            below = [bisect_left(words, bound) for bound in bounds]
            k = kappa(below[0], below[1] - below[0], below[2] - below[1], n - below[2])
            if k is not None:
                draws.append(k)
        ci = interval(draws)
    return {"kappa": value, "ci": ci, "trials": len(rows)}


def people_in_order(rows):
    """People by their smallest answer id (the server's order: person ids are pseudonyms, answer ids are not)."""
    first = {}
    for row in rows:
        if row["player_id"] not in first or row["answer_id"] < first[row["player_id"]]:
            first[row["player_id"]] = row["answer_id"]
    return sorted(first, key=first.__getitem__)


def each_person_vs_model(rows):
    by_person = defaultdict(list)
    for row in rows:
        by_person[row["player_id"]].append(row)
    kappas = []
    for person in people_in_order(rows):
        cells = [0, 0, 0, 0]
        for row in by_person[person]:
            cells[(0 if row["human_correct"] else 2) + (0 if row["model_correct"] else 1)] += 1
        k = kappa(*cells)
        if k is not None:
            kappas.append(k)
    if not kappas:
        return {"kappa": None, "ci": None, "trials": len(rows), "people": 0}
    rng = random.Random(SEED)
    m = len(kappas)
    means = []
    for _ in range(RESAMPLES):
        means.append(running_sum(kappas[(u * m) >> 32] for u in resample_words(rng, m)) / m)
    return {"kappa": sum(kappas) / len(kappas), "ci": interval(means), "trials": len(rows), "people": len(kappas)}


def mean_pair_kappa(people, images, right, weights):
    """right[(person, image)] = True/False for the answers given; weights[image] = times the image is counted."""
    values = []
    for i, a in enumerate(people):
        for b in people[i + 1 :]:
            n = both = first = second = 0
            for image in images:
                w = weights[image]
                if w == 0 or (a, image) not in right or (b, image) not in right:
                    continue
                n += w
                ra, rb = right[a, image], right[b, image]
                both += w if ra and rb else 0
                first += w if ra else 0
                second += w if rb else 0
            if n == 0:
                continue
            k = kappa(both, first - both, second - both, n - first - second + both)
            if k is not None:
                values.append(k)
    if not values:
        return None, 0
    return running_sum(values) / len(values), len(values)


def people_vs_people(rows):
    shared = [row for row in rows if row["shared_image"]]
    people = people_in_order(shared)
    images = sorted({row["shared_image"] for row in shared})
    if len(people) < 2 or not images:
        return None
    right = {(row["player_id"], row["shared_image"]): row["human_correct"] for row in shared}
    value, pairs = mean_pair_kappa(people, images, right, dict.fromkeys(images, 1))
    if pairs == 0:
        return {"kappa": None, "ci": None, "trials": len(images), "pairs": 0}
    rng = random.Random(SEED)
    draws = []
    for _ in range(RESAMPLES):
        weights = dict.fromkeys(images, 0)
        for u in resample_words(rng, len(images)):
            weights[images[(u * len(images)) >> 32]] += 1
        k, _ = mean_pair_kappa(people, images, right, weights)
        if k is not None:
            draws.append(k)
    return {"kappa": value, "ci": interval(draws), "trials": len(images), "pairs": pairs}


def read_answers(path):
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for raw in csv.DictReader(handle):
            row = dict(raw)
            row["eps"] = float(row["eps"])
            row["human_correct"] = row["human_correct"] == "1"
            row["model_correct"] = row["model_correct"] == "1"
            for name in ("true_label", "human_answer", "model_answer"):
                row[name] = int(row[name])
            row["event"] = row["event"] or None
            row["shared_image"] = row["shared_image"] or None
            row["eps_bucket"] = eps_bucket(row["eps"], row["norm"])  # recomputed, not read
            rows.append(row)
    return rows


def keep(row, args):
    for name in ("event", "pack", "opponent", "attack", "condition"):
        wanted = getattr(args, name)
        if wanted is not None and row[name] != wanted:
            return False
    day = row["answered_at"][:10]  # ISO 8601, UTC
    return not ((args.since and day < args.since) or (args.until and day > args.until))


def table(rows, group_by):
    groups = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in group_by)].append(row)
    out = []
    for values in sorted(groups, key=lambda vs: [sort_value(k, v) for k, v in zip(group_by, vs, strict=True)]):
        members = groups[values]
        n = len(members)
        human = sum(1 for r in members if r["human_correct"])
        model = sum(1 for r in members if r["model_correct"])
        out.append(
            {
                "keys": dict(zip(group_by, values, strict=True)),
                "n": n,
                "human_correct": human,
                "human_accuracy": human / n,
                "human_ci": list(wilson(human, n)),
                "model_correct": model,
                "model_accuracy": model / n,
                "model_ci": list(wilson(model, n)),
                "error_consistency_model": people_vs_model(members),
                "error_consistency_model_by_person": each_person_vs_model(members),
                "error_consistency_people": people_vs_people(members),
            }
        )
    return out


def confusions(rows, classes):
    """{pack: {"human": counts, "model": counts, "size": classes}}: counts[(truth, answer)], class indices as in
    metadata.json's class_names."""
    out = {}
    for row in rows:
        size = len(classes.get(row["pack"], ())) or max(row["true_label"], row["human_answer"], row["model_answer"]) + 1
        entry = out.setdefault(row["pack"], {"human": {}, "model": {}, "size": 0})
        entry["size"] = max(entry["size"], size)
        for who, answer in (("human", row["human_answer"]), ("model", row["model_answer"])):
            cell = (row["true_label"], answer)
            entry[who][cell] = entry[who].get(cell, 0) + 1
    return out


def compare(mine, theirs, tolerance=1e-9):
    """Differences between two tables (lists of groups), as readable lines."""
    problems = []
    if len(mine) != len(theirs):
        problems.append(f"{len(mine)} groups here, {len(theirs)} in the reference")

    def walk(a, b, where):
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{where}.{key}")
        elif isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{where}[{i}]")
        elif isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
            if abs(a - b) > tolerance:
                problems.append(f"{where}: {a} here, {b} in the reference")
        elif a != b:
            problems.append(f"{where}: {a!r} here, {b!r} in the reference")

    for i, (a, b) in enumerate(zip(mine, theirs, strict=False)):
        walk(a, b, f"group[{i}]")
    return problems


def fmt_ci(ci):
    return "—" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def fmt_kappa(entry):
    if entry is None or entry["kappa"] is None:
        return "—"
    return f"{entry['kappa']:.3f} {fmt_ci(entry['ci'])}"


def main(argv=None):
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", default=str(here / "answers.csv"), help="the answers CSV (default: beside me)")
    parser.add_argument("--group-by", default=",".join(DEFAULT_GROUP_BY), help="subset of: " + ", ".join(GROUP_KEYS))
    for name in ("event", "pack", "opponent", "attack", "condition"):
        parser.add_argument(f"--{name}", default=None, help=f"only this {name}")
    parser.add_argument("--since", default=None, help="first day (UTC), YYYY-MM-DD")
    parser.add_argument("--until", default=None, help="last day (UTC), YYYY-MM-DD, included")
    parser.add_argument("--json", action="store_true", help="print the table as JSON (the API's 'groups')")
    parser.add_argument("--confusions", action="store_true", help="also print the confusion matrices")
    parser.add_argument("--check", default=None, help="a stats JSON (stats.json or GET /api/v1/stats) to compare")
    args = parser.parse_args(argv)
    group_by = tuple(k.strip() for k in args.group_by.split(",") if k.strip())
    unknown = [k for k in group_by if k not in GROUP_KEYS]
    if unknown:
        parser.error(f"unknown group key(s) {', '.join(unknown)}; use: {', '.join(GROUP_KEYS)}")
    rows = [row for row in read_answers(args.answers) if keep(row, args)]
    if args.check:
        check = Path(args.check)
        if not check.exists() and (here / check).exists():  # a name beside this script, from anywhere
            check = here / check
        reference = json.loads(check.read_text(encoding="utf-8"))
        filters = reference.get("filters") or {}
        names = ("event", "pack", "opponent", "attack", "condition", "since", "until")
        same = argparse.Namespace(**{name: filters.get(name) for name in names})
        rows = [row for row in rows if keep(row, same)]
        problems = compare(table(rows, tuple(reference["group_by"])), reference["groups"])
        for line in problems:
            print(line)
        print("matches the reference" if not problems else f"{len(problems)} difference(s)")
        return 1 if problems else 0
    result = table(rows, group_by)
    matrices = {}
    if args.confusions:
        metadata = Path(args.answers).resolve().parent / "metadata.json"
        classes = json.loads(metadata.read_text(encoding="utf-8")).get("class_names", {}) if metadata.is_file() else {}
        for pack, entry in confusions(rows, classes).items():
            size = range(entry["size"])
            for who in ("human", "model"):
                matrices.setdefault(pack, {})[who] = [[entry[who].get((t, a), 0) for a in size] for t in size]
    if args.json:
        out = {"group_by": list(group_by), "groups": result}
        if args.confusions:
            out["confusions"] = matrices
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    header = [*group_by, "n", "people", "95% CI", "model", "95% CI", "kappa people-model", "kappa by person"]
    header.append("kappa people-people")
    print("\t".join(header))
    for g in result:
        cells = [str(g["keys"][k]) for k in group_by]
        cells += [str(g["n"]), f"{g['human_accuracy']:.3f}", fmt_ci(g["human_ci"])]
        cells += [f"{g['model_accuracy']:.3f}", fmt_ci(g["model_ci"])]
        cells += [fmt_kappa(g["error_consistency_model"]), fmt_kappa(g["error_consistency_model_by_person"])]
        cells.append(fmt_kappa(g["error_consistency_people"]))
        print("\t".join(cells))
    for pack, entry in matrices.items():
        for who in ("human", "model"):
            print(f"\n{pack}: {who} answers (rows: truth, columns: answer)")
            for row in entry[who]:
                print(" ".join(f"{count:4d}" for count in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())

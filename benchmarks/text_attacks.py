"""Time per text round (attack + the opponent's answer) for each text opponent, side by side.

A round is one definition, attacked at the round budget and answered by the opponent (the answer is the attack's
last query). Opponents take turns text by text, so machine noise hits both alike, and each gets its own texts
(even and odd positions of the test split from ``--offset``): the process-wide caches (synonyms, MiniLM
embeddings) warm up as they would in a long-running model service, but one opponent's rounds never warm the
other's texts. One torch thread. Goal: p95 <= 300 ms for TF-IDF, <= 1 s for MiniLM. Beside wall time it prints
the process's CPU time per round, which a machine shared with other jobs inflates far less. "Answer wrong"
counts every round whose shown text the opponent gets wrong, including texts it gets wrong when clean.

Usage: python benchmarks/text_attacks.py [--rounds 40] [--budget 0.25] [--append]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.ml.packs.text.definitions import definitions_pack  # noqa: E402
from app.ml.text import attacks  # noqa: E402
from app.ml.text.cards import machine  # noqa: E402
from app.ml.text.encoder import sentence_encoder  # noqa: E402
from app.ml.text.opponents import load_text_opponent  # noqa: E402
from app.ml.text.synonyms import synonym_source  # noqa: E402

OPPONENTS = ("definitions-tfidf", "definitions-minilm")
ATTACKS = ("textfooler", "deepwordbug")
GOALS_MS = {"definitions-tfidf": 300.0, "definitions-minilm": 1000.0}
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="rounds per opponent and attack")
    parser.add_argument("--budget", type=float, default=0.25)
    parser.add_argument("--offset", type=int, default=1000, help="first test text (away from the cards' first 100)")
    parser.add_argument("--append", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started_at = datetime.now(UTC)
    load = os.getloadavg()
    pack = definitions_pack()
    opponents = {name: load_text_opponent(name) for name in OPPONENTS}
    synonym_source()  # the WordNet index and MiniLM load once per process, before any round is timed
    sentence_encoder().encode(["warm-up"])
    times = {(o, a): [] for o in OPPONENTS for a in ATTACKS}
    cpu_times = {key: [] for key in times}
    fooled = {key: [] for key in times}
    queries = {key: [] for key in times}
    for attack in ATTACKS:
        run = getattr(attacks, attack)
        for r in range(args.rounds):
            for k, name in enumerate(OPPONENTS):
                i = args.offset + 2 * (r + args.rounds * ATTACKS.index(attack)) + k
                text, label = pack.test.texts[i], int(pack.test.labels[i])
                t0, c0 = time.perf_counter(), time.process_time()
                result = run(opponents[name], [text], [label], args.budget, seed=0)[0]
                times[(name, attack)].append(1000 * (time.perf_counter() - t0))
                cpu_times[(name, attack)].append(1000 * (time.process_time() - c0))
                fooled[(name, attack)].append(result.success)
                queries[(name, attack)].append(result.queries)
    lines = [
        f"## Text rounds: time per round (text branch, {started_at:%Y-%m-%d %H:%M} UTC; {machine()}, no GPU, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start, 1 torch thread)",
        "",
        f"`python benchmarks/text_attacks.py --rounds {args.rounds} --budget {args.budget}`: one definition per "
        f"round, attacked at budget {args.budget:.0%} of its words and answered; {args.rounds} rounds per opponent "
        "and attack, opponents taking turns, each on its own test texts.",
        "",
        "| opponent | attack | median ms | p95 ms | max ms | goal p95 | CPU median ms | CPU p95 ms | answer wrong "
        "| queries (median) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for attack in ATTACKS:
        for name in OPPONENTS:
            t, cpu = times[(name, attack)], cpu_times[(name, attack)]
            p95 = percentile(t, 95)
            lines.append(
                f"| {name} | {attack} | {statistics.median(t):.0f} | {p95:.0f} | {max(t):.0f} | "
                f"{GOALS_MS[name]:.0f} ({'met' if p95 <= GOALS_MS[name] else 'missed'}) | "
                f"{statistics.median(cpu):.0f} | {percentile(cpu, 95):.0f} | "
                f"{np.mean(fooled[(name, attack)]):.0%} | {statistics.median(queries[(name, attack)]):.0f} |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()

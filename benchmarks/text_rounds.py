"""Time per text round through the model service (issue #18): what a player waits for between "Start a text
round" and the definition on screen, minus the web and the database.

Each round is one ``InProcessModelService.text(TextJob)`` call, as app/game/text.py makes it: the text lane queues it,
the worker thread draws a test definition the opponent gets right (8 candidates classified in one call), attacks it
at the budget (or swaps as many random synonyms, the control), and asks the opponent for its full answer on the shown
text. Rounds run one after another (one player), opponents and attacks taking turns so machine noise hits all alike,
each with a fresh seed. Before timing, one round per opponent loads the pack, the checkpoints and MiniLM (reported as
the cold start). One torch thread. Goal: p95 <= 300 ms for TF-IDF, <= 1 s for MiniLM.

Usage: python benchmarks/text_rounds.py [--rounds 30] [--budget 0.25] [--append]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.ml.service.in_process import InProcessModelService  # noqa: E402
from app.ml.service.text_contracts import TextJob  # noqa: E402

OPPONENTS = ("definitions-tfidf", "definitions-minilm")
KINDS = (("textfooler", "adversarial"), ("deepwordbug", "adversarial"), ("textfooler", "random_swap"))
GOALS_MS = {"definitions-tfidf": 300.0, "definitions-minilm": 1000.0}
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


async def run(rounds: int, budget: float) -> tuple[dict[str, float], dict[tuple[str, str, str], list[float]], dict]:
    # A long timeout: the cold start (WordNet pack, checkpoints, MiniLM) can pass the default 30 s on a loaded host.
    service = InProcessModelService(opponents=["fashion-mlp"], device="cpu", torch_threads=1, timeout_s=300)
    await service.start()
    cold: dict[str, float] = {}
    times: dict[tuple[str, str, str], list[float]] = {(o, a, c): [] for o in OPPONENTS for a, c in KINDS}
    worker: dict[tuple[str, str, str], list[float]] = {key: [] for key in times}
    fooled: dict[tuple[str, str, str], list[bool]] = {key: [] for key in times}
    cpu: dict[tuple[str, str, str], list[float]] = {key: [] for key in times}
    try:
        for name in OPPONENTS:
            started = time.perf_counter()
            await service.text(TextJob(name, "textfooler", budget, seed=10_000))
            cold[name] = 1000 * (time.perf_counter() - started)
        seed = 0
        for _ in range(rounds):
            for attack, condition in KINDS:
                for name in OPPONENTS:
                    seed += 1
                    job = TextJob(name, attack, budget, seed=seed, condition=condition, client="bench")
                    started, cpu_started = time.perf_counter(), time.process_time()
                    result = await service.text(job)
                    times[(name, attack, condition)].append(1000 * (time.perf_counter() - started))
                    cpu[(name, attack, condition)].append(1000 * (time.process_time() - cpu_started))
                    worker[(name, attack, condition)].append(result.elapsed_ms)
                    fooled[(name, attack, condition)].append(result.fooled)
    finally:
        await service.stop()
    return cold, times, {"worker": worker, "fooled": fooled, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="rounds per opponent, attack and condition")
    parser.add_argument("--budget", type=float, default=0.25, help="share of the words the attack may change")
    parser.add_argument("--append", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started_at = datetime.now(UTC)
    load = os.getloadavg()
    cold, times, extra = asyncio.run(run(args.rounds, args.budget))
    end_load = os.getloadavg()
    lines = [
        f"## Text rounds through the model service (text_play, {started_at:%Y-%m-%d}, this machine: 2 cores, shared "
        "with other work)",
        "",
        f"`python benchmarks/text_rounds.py --rounds {args.rounds} --budget {args.budget}` "
        f"({started_at:%H:%M} UTC; AMD EPYC, no GPU, load average {load[0]:.1f} at the start, {end_load[0]:.1f} at "
        "the end; 1 torch thread): one player's text rounds one after another (CPU: the process's CPU time per "
        "round, which other work on the shared cores inflates far less than wall time) through "
        "`InProcessModelService.text` (text lane, worker thread: draw a definition the opponent gets right, attack "
        f"it at {args.budget:.0%} of its words or make the control's swaps, the opponent's answer). "
        f"{args.rounds} rounds per row, fresh seeds. Cold start (first round, loading the pack, the checkpoint and "
        "MiniLM): " + ", ".join(f"{name} {ms / 1000:.1f} s" for name, ms in cold.items()) + ".",
        "",
        "| opponent | attack | condition | p50 ms | p95 ms | max ms | goal p95 | worker p50 ms | CPU p50 ms "
        "| CPU p95 ms | machine fooled |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for attack, condition in KINDS:
        for name in OPPONENTS:
            key = (name, attack, condition)
            t = times[key]
            p95 = float(np.percentile(t, 95))
            goal = GOALS_MS[name]
            lines.append(
                f"| {name} | {attack} | {condition} | {statistics.median(t):.0f} | {p95:.0f} | {max(t):.0f} | "
                f"{goal:.0f} ({'met' if p95 <= goal else 'missed'}) | {statistics.median(extra['worker'][key]):.0f} | "
                f"{statistics.median(extra['cpu'][key]):.0f} | {np.percentile(extra['cpu'][key], 95):.0f} | "
                f"{np.mean(extra['fooled'][key]):.0%} |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()

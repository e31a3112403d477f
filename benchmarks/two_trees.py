"""Run one benchmark script in two checkouts of the project, alternately, and print both outputs side by side in
time: the way to show that a change of structure left a benchmark's figures where they were.

Each round runs the script once in the "before" tree and once in the "after" tree (the order alternates between
rounds, so a machine that grows busier during the run hits both alike). Each tree's own ``app`` package is put first
on ``PYTHONPATH`` and the script is the tree's own copy, so each side measures its own code.

Usage: python benchmarks/two_trees.py --before /path/to/old/checkout [--after .] [--rounds 2] -- \
           benchmarks/pgd_overhead.py --reps 20
A before tree can be made with ``git worktree add --detach /tmp/before <commit>``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def run_in(tree: Path, script_and_args: list[str]) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(tree / script_and_args[0]), *script_and_args[1:]],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{tree}: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return time.monotonic() - started, result.stdout


def git_commit(tree: Path) -> str:
    found = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return found.stdout.strip() or "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, default=Path.cwd())
    parser.add_argument("--rounds", type=int, default=2, help="runs per tree, alternating")
    parser.add_argument("script", nargs=argparse.REMAINDER, help="-- SCRIPT [ARGS]: a path inside each tree")
    args = parser.parse_args()
    script = args.script[1:] if args.script[:1] == ["--"] else args.script
    if not script:
        parser.error("name the benchmark script after --")
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for label, tree in trees.items():
        print(f"{label}: {tree} at {git_commit(tree)}")
    for number in range(args.rounds):
        order = list(trees.items()) if number % 2 == 0 else list(reversed(trees.items()))
        for label, tree in order:
            seconds, output = run_in(tree, script)
            print(f"\n=== run {number + 1}, {label} ({seconds:.0f} s) ===")
            print(output.rstrip())


if __name__ == "__main__":
    main()

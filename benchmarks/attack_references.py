"""Our attacks side by side with the reference libraries, in one run, on the same model, images and budget.

Three tables, printed as Markdown (the format of benchmarks/RESULTS.md):

1. PGD-10, L∞ eps 0.1, batch 128: ours vs torchattacks vs Foolbox vs ART, each as a ratio to its floor (10 x one
   forward+backward of the batch, weights frozen, gradient to the input only).
2. CW-L2, 100 steps, batch 32: ratio to the floor (100 x forward+backward), success and median L2, for ours (the
   default search over c with early abort, and all 100 steps) and for the three libraries with one c (1.0),
   100 steps at lr 0.01, kappa 0 (the torchattacks defaults, the setting the issue measured).
3. HopSkipJump, L2, batch 32: mean queries per image and median L2, ours (at most 1,000 queries per image) vs ART
   and Foolbox at their default settings but with the iteration count cut to land near 1,000 and 2,500 queries
   (their defaults, 50 and 64 iterations, cost 25,000+ queries per image and take hours on 2 cores). The libraries'
   queries are counted by a wrapper module that adds up every image the model is shown, divided by the batch.

Timing is the one app/ml/measure/bench.py uses for its ratio runs: each repetition times every implementation of a group
and, right before it, its floor, in an order that rotates between repetitions, so other processes' load hits both
alike; the ratio reported is the median of the paired (attack / floor) ratios. Success is the share of the
clean-correct images that end misclassified; median L2 is over those. Ctrl-C prints the tables measured so far.

Run: ``nice -n 5 .venv/bin/python benchmarks/attack_references.py [--reps 5] [--art-cw-reps 2] [--only pgd,cw,hsj]
[--hsj-art-iters 5,10] [--hsj-foolbox-steps 5,10]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import signal
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import Tensor

from app.ml import ArenaModel, get_pack, load_opponent
from app.ml.attacks import get_attack
from app.ml.measure.bench import attack_summary, gradient_floor, timed

console = Console(stderr=True)
INTERRUPTED: list[str] = []  # sections cut short by Ctrl-C or SIGTERM
Run = Callable[[Tensor, Tensor], Tensor]


@dataclass
class Impl:
    name: str
    run: Run
    reps: int | None = None  # at most this many timed repetitions (slow implementations); None: all


@dataclass
class RatioResult:
    name: str
    floor_ms: float
    attack_ms: float
    ratio: float
    reps: int
    success: float
    median_l2: float


@dataclass
class QueryResult:
    name: str
    queries: float
    success: float
    median_l2: float
    seconds: float


class CountingModule(torch.nn.Module):
    """Counts every image the wrapped model is shown (the libraries' queries); casts NumPy's float64 to float32."""

    def __init__(self, model: ArenaModel) -> None:
        super().__init__()
        self.model = model
        self.images = 0

    def forward(self, x: Tensor) -> Tensor:
        self.images += x.shape[0]
        out: Tensor = self.model(x.float())
        return out


def art_classifier(model: torch.nn.Module, arena: ArenaModel) -> Any:
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=arena.image_shape,
        nb_classes=arena.num_classes,
        clip_values=arena.bounds,
        device_type="cpu",
    )


def paired_ratios(
    model: ArenaModel, images: Tensor, labels: Tensor, steps: int, impls: list[Impl], reps: int, label: str
) -> list[RatioResult]:
    floor = gradient_floor(model, images, labels, steps)
    floor()  # warm-up: oneDNN picks its kernels on the first calls
    times: dict[str, list[float]] = {i.name: [] for i in impls}
    floors: dict[str, list[float]] = {i.name: [] for i in impls}
    last: dict[str, Tensor] = {}
    try:
        for rep in range(reps):
            order = impls[rep % len(impls) :] + impls[: rep % len(impls)]
            for impl in order:
                if impl.reps is not None and len(times[impl.name]) >= impl.reps:
                    continue
                console.log(f"{label}: repetition {rep + 1}/{reps}, {impl.name}")
                floor_s = timed(floor)[0]
                with torch.random.fork_rng():  # some libraries seed or draw from the global RNGs
                    torch.manual_seed(rep)
                    np.random.seed(rep)
                    seconds, adv = timed(lambda impl=impl: impl.run(images, labels))
                floors[impl.name].append(floor_s)
                times[impl.name].append(seconds)
                last[impl.name] = adv
    except KeyboardInterrupt:
        console.log(f"{label}: interrupted; reporting the repetitions completed so far")
        INTERRUPTED.append(label)
    out = []
    for impl in impls:
        if not times[impl.name]:
            continue
        success, l2, _, _ = attack_summary(model, images, labels, last[impl.name], None)
        ratios = [t / f for t, f in zip(times[impl.name], floors[impl.name], strict=True)]
        out.append(
            RatioResult(
                impl.name,
                statistics.median(floors[impl.name]) * 1000,
                statistics.median(times[impl.name]) * 1000,
                statistics.median(ratios),
                len(ratios),
                success,
                l2,
            )
        )
    return out


def pgd_impls(model: ArenaModel, eps: float, steps: int) -> list[Impl]:
    import foolbox
    import torchattacks
    from art.attacks.evasion import ProjectedGradientDescent

    ours = get_attack("pgd", steps=steps)
    ta = torchattacks.PGD(model, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)
    fb = foolbox.attacks.LinfPGD(abs_stepsize=2.5 * eps / steps, steps=steps, random_start=True)
    fmodel = foolbox.PyTorchModel(model, bounds=model.bounds)
    art = ProjectedGradientDescent(
        art_classifier(model, model),
        norm=np.inf,
        eps=eps,
        eps_step=2.5 * eps / steps,
        max_iter=steps,
        num_random_init=1,
        batch_size=128,
        verbose=False,
    )
    return [
        Impl("arena", lambda x, y: ours(model, x, y, eps, generator=torch.Generator().manual_seed(0)).adversarial),
        Impl(f"torchattacks {torchattacks.__version__}", lambda x, y: ta(x, y)),
        Impl(f"Foolbox {foolbox.__version__}", lambda x, y: fb(fmodel, x, y, epsilons=eps)[0]),
        Impl("ART 1.20.1", lambda x, y: torch.from_numpy(art.generate(x.numpy(), y.numpy()))),
    ]


def cw_impls(model: ArenaModel, steps: int, art_reps: int) -> list[Impl]:
    import foolbox
    import torchattacks
    from art.attacks.evasion import CarliniL2Method

    big = 28.0  # minimisation attacks: an L2 eps that never clips on 28x28 images in [0,1]
    ours = get_attack("cw", steps=steps)
    ours_full = get_attack("cw", steps=steps, abort_early=False)
    ta = torchattacks.CW(model, c=1, kappa=0, steps=steps, lr=0.01)
    fb = foolbox.attacks.L2CarliniWagnerAttack(
        binary_search_steps=1, steps=steps, stepsize=0.01, initial_const=1.0, confidence=0.0, abort_early=False
    )
    fmodel = foolbox.PyTorchModel(model, bounds=model.bounds)
    art = CarliniL2Method(
        art_classifier(model, model),
        confidence=0.0,
        learning_rate=0.01,
        binary_search_steps=1,
        max_iter=steps,
        initial_const=1.0,
        batch_size=32,
        verbose=False,
    )
    return [
        Impl("arena (5 rounds of c, early abort)", lambda x, y: ours(model, x, y, big).adversarial),
        Impl("arena (5 rounds of c, all steps)", lambda x, y: ours_full(model, x, y, big).adversarial),
        Impl(f"torchattacks {torchattacks.__version__} (c=1)", lambda x, y: ta(x, y)),
        Impl(f"Foolbox {foolbox.__version__} (c=1)", lambda x, y: fb(fmodel, x, y, epsilons=None)[0]),
        Impl("ART 1.20.1 (c=1)", lambda x, y: torch.from_numpy(art.generate(x.numpy(), y.numpy())), reps=art_reps),
    ]


def hsj_runs(
    model: ArenaModel, images: Tensor, labels: Tensor, art_iters: list[int], foolbox_steps: list[int]
) -> list[QueryResult]:
    import foolbox
    from art.attacks.evasion import HopSkipJump

    n = images.shape[0]
    out = []
    counter = CountingModule(model).eval()

    def record(name: str, fn: Callable[[], tuple[Tensor, float]]) -> None:
        console.log(f"HopSkipJump: {name}")
        with torch.random.fork_rng():
            torch.manual_seed(0)
            np.random.seed(0)
            seconds, (adv, queries) = timed(fn)
        success, l2, _, _ = attack_summary(model, images, labels, adv, None)
        out.append(QueryResult(name, queries, success, l2, seconds))

    ours = get_attack("hopskipjump", max_queries=1000)

    def run_ours() -> tuple[Tensor, float]:
        gens = [torch.Generator().manual_seed(i) for i in range(n)]
        result = ours(model, images, labels, 28.0, generator=gens)
        assert result.queries is not None
        return result.adversarial, float(result.queries.float().mean())

    record("arena (max_queries=1000)", run_ours)
    clf = art_classifier(counter, model)
    for iters in art_iters:

        def run_art(iters: int = iters) -> tuple[Tensor, float]:
            counter.images = 0
            art = HopSkipJump(clf, batch_size=128, targeted=False, norm=2, max_iter=iters, verbose=False)
            adv = torch.from_numpy(art.generate(images.numpy(), y=labels.numpy())).float()
            return adv, counter.images / n

        record(f"ART 1.20.1 (defaults, max_iter={iters})", run_art)
    fmodel = foolbox.PyTorchModel(counter, bounds=model.bounds)
    for steps in foolbox_steps:

        def run_fb(steps: int = steps) -> tuple[Tensor, float]:
            counter.images = 0
            adv = foolbox.attacks.HopSkipJumpAttack(steps=steps)(fmodel, images, labels, epsilons=None)[0]
            return adv, counter.images / n

        record(f"Foolbox {foolbox.__version__} (defaults, steps={steps})", run_fb)
    return out


def _num(v: float, digits: int = 3) -> str:
    return "–" if v != v else f"{v:.{digits}f}"


def ratio_table(title: str, rows: list[RatioResult]) -> list[str]:
    lines = [
        f"**{title}**",
        "",
        "| implementation | floor ms | attack ms | ratio to floor (median of paired) | reps | success | median L2 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.floor_ms:.0f} | {r.attack_ms:.0f} | {r.ratio:.2f}x | {r.reps} | {r.success:.1%} | "
            f"{_num(r.median_l2)} |"
        )
    return lines + [""]


def query_table(rows: list[QueryResult]) -> list[str]:
    lines = [
        "**HopSkipJump (L2), batch 32**",
        "",
        "| implementation | queries per image (mean) | success | median L2 | wall s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.name} | {r.queries:.0f} | {r.success:.1%} | {_num(r.median_l2)} | {r.seconds:.0f} |")
    return lines + [""]


def verdicts(cw: list[RatioResult], hsj: list[QueryResult]) -> list[str]:
    lines = []
    by = {r.name.split(" (")[0] + (" full" if "all steps" in r.name else ""): r for r in cw}
    ours, ta = by.get("arena full"), next((r for r in cw if r.name.startswith("torchattacks")), None)
    if ours is not None and ta is not None:
        met = ours.ratio <= 1.2 and ours.success >= 0.96 and ours.median_l2 <= ta.median_l2
        lines.append(
            f"- CW-L2 goal (<= 1.2x floor, >= 96% success, median L2 <= torchattacks'): {'met' if met else 'NOT met'}"
            f" — arena {ours.ratio:.2f}x, {ours.success:.1%}, {ours.median_l2:.3f} vs torchattacks "
            f"{ta.ratio:.2f}x, {ta.success:.1%}, {ta.median_l2:.3f}"
        )
    mine = next((r for r in hsj if r.name.startswith("arena")), None)
    art = next((r for r in hsj if "max_iter=10" in r.name), None)
    if mine is not None and art is not None:
        met = mine.median_l2 <= art.median_l2 and mine.queries <= 1000
        lines.append(
            f"- HopSkipJump goal (ART's median L2 with <= 1,000 queries): {'met' if met else 'NOT met'} — arena "
            f"{mine.median_l2:.3f} at {mine.queries:.0f} queries vs ART {art.median_l2:.3f} at {art.queries:.0f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions of the ratio runs")
    parser.add_argument("--art-cw-reps", type=int, default=2, help="repetitions for ART's CW (about 20x its floor)")
    parser.add_argument("--only", default="pgd,cw,hsj", help="comma-separated sections: pgd, cw, hsj (default: all)")
    parser.add_argument(
        "--hsj-art-iters", default="5,10", help="ART HopSkipJump max_iter values to run (comma-separated; empty: none)"
    )
    parser.add_argument(
        "--hsj-foolbox-steps", default="5,10", help="Foolbox HopSkipJump steps to run (comma-separated; empty: none)"
    )
    args = parser.parse_args()
    art_iters = [int(v) for v in args.hsj_art_iters.split(",") if v.strip()]
    foolbox_steps = [int(v) for v in args.hsj_foolbox_steps.split(",") if v.strip()]
    try:
        import art  # noqa: F401
        import foolbox  # noqa: F401
        import torchattacks  # noqa: F401
    except ImportError as missing:
        raise SystemExit(f"{missing}: the reference libraries are test-only extras; run `make install`") from None

    # Ctrl-C, and SIGTERM for runs started in the background (where SIGINT arrives ignored), stop the run and
    # print what was measured.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    only = {part.strip() for part in args.only.split(",")}
    if not only <= {"pgd", "cw", "hsj"}:
        raise SystemExit(f"--only takes pgd, cw and hsj; got {args.only!r}")
    model = load_opponent("fashion-cnn")
    images, labels = get_pack(model.pack_name).tensors("test", n=128)
    sections: list[list[str]] = []
    pgd: list[RatioResult] = []
    cw: list[RatioResult] = []
    hsj: list[QueryResult] = []
    try:
        x, y = images[:32], labels[:32]
        if "pgd" in only:
            pgd = paired_ratios(model, images, labels, 10, pgd_impls(model, 0.1, 10), args.reps, "PGD-10")
            sections.append(ratio_table("PGD-10, L∞ eps 0.1, batch 128 (floor: 10 x fwd+bwd)", pgd))
        if "cw" in only and not INTERRUPTED:
            cw = paired_ratios(model, x, y, 100, cw_impls(model, 100, args.art_cw_reps), args.reps, "CW-L2")
            sections.append(ratio_table("CW-L2, 100 steps, batch 32 (floor: 100 x fwd+bwd)", cw))
        if "hsj" in only and not INTERRUPTED:
            hsj = hsj_runs(model, x, y, art_iters, foolbox_steps)
            sections.append(query_table(hsj))
    except KeyboardInterrupt:
        console.log("interrupted: printing what was measured")
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"{when}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}; fashion-cnn, first 128/32 Fashion-MNIST test images\n"
    )
    for lines in sections:
        print("\n".join(lines))
    print("\n".join(verdicts(cw, hsj)))


if __name__ == "__main__":
    main()

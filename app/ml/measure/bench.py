"""Attack benchmark: per attack success, median perturbation sizes, queries and time, plus the compute-limit
ratios of PGD-10 and CW-L2 to their floor, side by side with torchattacks when it is installed.

``run_attack_bench()`` returns plain rows; ``format_attack_bench()`` renders them as Markdown, which is what
``benchmarks/attacks.py`` prints and what benchmarks/RESULTS.md records. The lead can wire this into the CLI as
``arena bench attacks`` (pass ``progress`` to drive a progress bar).

Definitions. Success rate: the share of the *clean-correct* images the attack fools (images the model already
gets wrong are excluded). Median L2/L∞: over the fooled images. Queries: median per image, black-box only.
ms/image: wall time of the whole attack call divided by the batch size. Floor: ``steps`` x one forward+backward
of the same batch (weights frozen, gradient with respect to the input only), timed interleaved with the attack
so other processes' load hits both alike; the ratio is the median of the paired ratios.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from app.ml.attacks import get_attack
from app.ml.model import ArenaModel

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class BenchRow:
    attack: str
    impl: str
    threat_model: str
    batch: int
    eps: float
    params: str
    success: float
    median_l2: float
    median_linf: float
    median_queries: float | None
    ms_per_image: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RatioRow:
    name: str
    batch: int
    steps: int
    floor_ms: float
    ratio: float
    success: float
    median_l2: float


# name -> (params, eps, batch). Minimisation attacks get an eps so large it never clips.
DEFAULT_SUITE: dict[str, tuple[dict[str, Any], float, int]] = {
    "fgsm": ({}, 0.1, 128),
    "pgd": ({"steps": 10}, 0.1, 128),
    "pgd-l2": ({"steps": 10}, 1.5, 128),
    "mi-fgsm": ({"steps": 10}, 0.1, 128),
    "deepfool": ({}, 28.0, 32),
    "deepfool-linf": ({}, 1.0, 32),
    "cw": ({"steps": 100}, 28.0, 32),
    "square": ({"max_queries": 1000}, 0.1, 32),
    "nes": ({"max_queries": 1000}, 0.1, 32),
    "hopskipjump": ({"max_queries": 1000}, 28.0, 32),
    "genattack": ({"max_queries": 1000}, 0.1, 32),
    "one-pixel": ({"max_queries": 1000, "pixels": 3}, 1.0, 32),
    "evadehc": ({"max_queries": 1000}, 0.1, 32),
    "advgan": ({}, 0.1, 128),
    "pgd-early-stop": ({"steps": 10, "early_stop": True}, 0.1, 128),
}
# Suite entries that run a registered attack under another name (same attack, different mode).
SUITE_ATTACKS: dict[str, str] = {"pgd-early-stop": "pgd"}


def attack_summary(
    model: ArenaModel, images: Tensor, labels: Tensor, adv: Tensor, queries: Tensor | None
) -> tuple[float, float, float, float | None]:
    with torch.no_grad():
        clean_right = model(images).argmax(1) == labels
        fooled = (model(adv).argmax(1) != labels) & clean_right
    delta = (adv - images).flatten(1)
    n_right = max(int(clean_right.sum()), 1)
    success = int(fooled.sum()) / n_right
    l2 = float(delta.norm(dim=1)[fooled].median()) if bool(fooled.any()) else float("nan")
    linf = float(delta.abs().amax(1)[fooled].median()) if bool(fooled.any()) else float("nan")
    q = None if queries is None else float(queries.float().median())
    return success, l2, linf, q


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def gradient_floor(model: ArenaModel, images: Tensor, labels: Tensor, steps: int) -> Callable[[], None]:
    x = images.clone().requires_grad_(True)

    def run() -> None:
        for _ in range(steps):
            loss = F.cross_entropy(model(x), labels, reduction="sum")
            torch.autograd.grad(loss, x)

    return run


def _torchattacks() -> Any | None:
    try:  # optional: the reference runs are skipped where it is not installed
        import torchattacks  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    return torchattacks


@dataclass(frozen=True)
class BenchCase:
    """One suite entry as run: the attack, its threat model and parameters, the eps and the batch size."""

    attack: str
    threat_model: str
    params: dict[str, Any]
    eps: float
    batch: int


def bench_row(
    model: ArenaModel,
    images: Tensor,
    labels: Tensor,
    case: BenchCase,
    impl: str,
    adv: Tensor,
    queries: Tensor | None,
    seconds: float,
) -> BenchRow:
    """The row for one implementation's run of ``case``: how often and how far it fooled ``model``, how fast."""
    success, l2, linf, q = attack_summary(model, images, labels, adv, queries)
    return BenchRow(
        case.attack,
        impl,
        case.threat_model,
        case.batch,
        case.eps,
        _fmt(case.params),
        success,
        l2,
        linf,
        q,
        seconds * 1000 / case.batch,
    )


def run_attack_bench(
    model: ArenaModel,
    images: Tensor,
    labels: Tensor,
    *,
    suite: dict[str, tuple[dict[str, Any], float, int]] | None = None,
    reps: int = 5,
    seed: int = 0,
    ratios: bool = True,
    progress: Progress | None = None,
) -> tuple[list[BenchRow], list[RatioRow]]:
    """Run every attack of ``suite`` once on the first ``batch`` images, then (``ratios``) the PGD-10 and CW
    ratio runs, which need at least 128 images."""
    say = progress or (lambda msg: logger.info("%s", msg))
    suite = DEFAULT_SUITE if suite is None else suite
    ta = _torchattacks()
    rows: list[BenchRow] = []
    for name, (params, eps, batch) in suite.items():
        say(f"{name} (batch {batch})")
        x, y = images[:batch], labels[:batch]
        attack = get_attack(SUITE_ATTACKS.get(name, name), **params)
        gens = [torch.Generator().manual_seed(seed + i) for i in range(batch)]
        seconds, result = timed(lambda a=attack, x=x, y=y, e=eps, g=gens: a(model, x, y, e, generator=g))
        case = BenchCase(name, attack.threat_model, params, eps, batch)
        rows.append(bench_row(model, x, y, case, "arena", result.adversarial, result.queries, seconds))
        if ta is not None:
            reference = _reference(ta, model, name, params, eps, seed)
            if reference is not None:
                say(f"{name} (torchattacks)")
                with torch.random.fork_rng():  # some torchattacks attacks seed the global RNG
                    torch.manual_seed(seed)
                    seconds, adv = timed(lambda r=reference, x=x, y=y: r(x, y))
                rows.append(bench_row(model, x, y, case, f"torchattacks {ta.__version__}", adv, None, seconds))
    ratio_rows = _ratio_runs(model, images, labels, ta, reps, seed, say) if ratios else []
    return rows, ratio_rows


def _reference(ta: Any, model: ArenaModel, name: str, params: dict[str, Any], eps: float, seed: int) -> Any | None:
    if name == "fgsm":
        return ta.FGSM(model, eps=eps)
    if name == "pgd":
        steps = params.get("steps", 20)
        return ta.PGD(model, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)
    if name == "cw":
        return ta.CW(model, c=1, kappa=0, steps=params.get("steps", 100), lr=0.01)
    if name == "deepfool":
        return ta.DeepFool(model, steps=50, overshoot=0.02)
    if name == "square":
        return ta.Square(
            model, norm="Linf", eps=eps, n_queries=params.get("max_queries", 1000), n_restarts=1, p_init=0.8, seed=seed
        )
    return None


def _ratio_runs(
    model: ArenaModel, images: Tensor, labels: Tensor, ta: Any | None, reps: int, seed: int, say: Progress
) -> list[RatioRow]:
    out: list[RatioRow] = []
    configs: list[tuple[str, int, int, float, Callable[[Tensor, Tensor], Tensor]]] = []
    pgd = get_attack("pgd", steps=10)
    configs.append(
        (
            "PGD-10 arena",
            128,
            10,
            0.1,
            lambda x, y: pgd(model, x, y, 0.1, generator=torch.Generator().manual_seed(seed)).adversarial,
        )
    )
    pgd_es = get_attack("pgd", steps=10, early_stop=True)
    configs.append(
        (
            "PGD-10 arena, early stop",
            128,
            10,
            0.1,
            lambda x, y: pgd_es(model, x, y, 0.1, generator=torch.Generator().manual_seed(seed)).adversarial,
        )
    )
    advgan = get_attack("advgan")
    try:
        advgan.generator_net(model)  # type: ignore[attr-defined]
    except FileNotFoundError as missing:
        say(f"AdvGAN skipped in the ratio runs: {missing}")
    else:
        configs.append(
            ("AdvGAN arena (one generator forward)", 128, 10, 0.1, lambda x, y: advgan(model, x, y, 0.1).adversarial)
        )
    cw = get_attack("cw", steps=100)
    cw_full = get_attack("cw", steps=100, abort_early=False)
    configs.append(
        ("CW-L2 arena (100 steps, 5 rounds of c)", 32, 100, 28.0, lambda x, y: cw(model, x, y, 28.0).adversarial)
    )
    configs.append(
        ("CW-L2 arena, abort_early=False", 32, 100, 28.0, lambda x, y: cw_full(model, x, y, 28.0).adversarial)
    )
    if ta is not None:
        ta_pgd = ta.PGD(model, eps=0.1, alpha=0.025, steps=10, random_start=True)
        ta_cw = ta.CW(model, c=1, kappa=0, steps=100, lr=0.01)
        configs.insert(1, ("PGD-10 torchattacks", 128, 10, 0.1, lambda x, y: ta_pgd(x, y)))
        configs.append(("CW-L2 torchattacks (c=1, 100 steps)", 32, 100, 28.0, lambda x, y: ta_cw(x, y)))
    for batch in sorted({c[1] for c in configs}):
        group = [c for c in configs if c[1] == batch]
        x, y = images[:batch], labels[:batch]
        floors = {steps: gradient_floor(model, x, y, steps) for steps in {c[2] for c in group}}
        for fn in floors.values():  # warm-up: oneDNN picks kernels on the first calls
            fn()
        times: dict[str, list[float]] = {c[0]: [] for c in group}
        floor_times: dict[str, list[float]] = {c[0]: [] for c in group}
        last: dict[str, Tensor] = {}
        for rep in range(reps):
            say(f"ratio runs, batch {batch}: repetition {rep + 1}/{reps}")
            order = group[rep % len(group) :] + group[: rep % len(group)]
            for name, _, steps, _, fn in order:
                floor_times[name].append(timed(floors[steps])[0])
                with torch.random.fork_rng():
                    seconds, adv = timed(lambda fn=fn, x=x, y=y: fn(x, y))
                times[name].append(seconds)
                last[name] = adv
        for name, _, steps, _, _ in group:
            success, l2, _, _ = attack_summary(model, x, y, last[name], None)
            paired = statistics.median(t / f for t, f in zip(times[name], floor_times[name], strict=True))
            out.append(RatioRow(name, batch, steps, statistics.median(floor_times[name]) * 1000, paired, success, l2))
    return out


def _fmt(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or value != value:  # None or NaN
        return "–"
    return f"{value:.{digits}f}"


def format_attack_bench(rows: list[BenchRow], ratios: list[RatioRow]) -> str:
    lines = [
        "| attack | implementation | threat | batch | eps | params | success | median L2 | median L∞ | median "
        "queries | ms/image |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.attack} | {r.impl} | {r.threat_model} | {r.batch} | {r.eps:g} | {r.params} | {r.success:.1%} | "
            f"{_num(r.median_l2)} | {_num(r.median_linf)} | {_num(r.median_queries, 0)} | {r.ms_per_image:.1f} |"
        )
    lines += [
        "",
        "| compute-limit run | batch | steps | floor (steps x fwd+bwd) ms | ratio to floor | success | median L2 |",
        "|---|---|---|---|---|---|---|",
    ]
    for q in ratios:
        lines.append(
            f"| {q.name} | {q.batch} | {q.steps} | {q.floor_ms:.1f} | {q.ratio:.3f}x | {q.success:.1%} | "
            f"{_num(q.median_l2)} |"
        )
    by_name = {q.name: q for q in ratios}
    pgd = by_name.get("PGD-10 arena")
    if pgd is not None:
        lines.append("")
        for other in ("PGD-10 arena, early stop", "AdvGAN arena (one generator forward)", "PGD-10 torchattacks"):
            if other in by_name and by_name[other].ratio > 0:
                lines.append(
                    f"- PGD-10 arena / {other}: **{pgd.ratio / by_name[other].ratio:.1f}x** the time "
                    "(ratio of their ratios to the same batch's floor)"
                )
    return "\n".join(lines)


def select_suite(attacks: str = "", n: int | None = None) -> dict[str, tuple[dict[str, Any], float, int]]:
    """The default suite, restricted to the comma-separated ``attacks`` (all when empty), batches capped at ``n``.

    Unknown names raise ``ValueError`` listing the valid ones.
    """
    wanted = [a.strip() for a in attacks.split(",") if a.strip()]
    unknown = [a for a in wanted if a not in DEFAULT_SUITE]
    if unknown:
        raise ValueError(f"unknown benchmark attack(s) {', '.join(unknown)}; choose from: {', '.join(DEFAULT_SUITE)}")
    chosen = {k: v for k, v in DEFAULT_SUITE.items() if not wanted or k in wanted}
    if n is not None:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        chosen = {k: (params, eps, min(batch, n)) for k, (params, eps, batch) in chosen.items()}
    return chosen


def results_section(table: str, *, command: str, machine: str, load_before: str, load_after: str) -> str:
    """A dated section for benchmarks/RESULTS.md holding ``table`` and how it was made."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"\n## Attack benchmark (`arena bench attacks`) — {now}\n\n"
        f"`{command}` on {machine}; load average before / after: {load_before} / {load_after}. Definitions: "
        "`app/ml/measure/bench.py` (success = share of the clean-correct images fooled; ratios = median of paired, "
        "interleaved runs against `steps` x one forward+backward of the same batch).\n\n"
        f"{table}\n"
    )


def append_results(section: str, path: Any) -> None:
    """Append ``section`` to the results file (never rewrites what is there)."""
    target = Path(path)
    with target.open("a", encoding="utf-8") as f:
        f.write(section)

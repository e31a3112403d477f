"""The options every training recipe takes, and the set-up the recipes share: threads, seeding, defaults.

Everything random in a recipe is seeded under ``torch.random.fork_rng``, so the caller's global RNG state is
untouched; ``threads`` sets torch's intra-op threads for the run and puts the previous value back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from app.config import get_settings
from app.ml.opponents.registry import resolve_device
from app.ml.opponents.specs import OpponentSpec
from app.ml.packs import DataPack, get_pack


@dataclass(frozen=True)
class TrainingOptions:
    """What a caller (``arena train``, a test, a benchmark) asks of a training run.

    ``None`` for epochs/batch_size/lr means the recipe's defaults (for an opponent, the values its committed card
    used); ``None`` for models_dir means the configured one; ``None`` for threads leaves torch's thread count.
    """

    seed: int = 0
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    device: str | torch.device = "cpu"
    models_dir: Path | None = None
    data_dir: Path | None = None
    threads: int | None = None
    progress: bool = True

    def output_dir(self) -> Path:
        """Where checkpoints and cards are written."""
        return Path(self.models_dir) if self.models_dir is not None else get_settings().models_dir


def hyperparameters(spec: OpponentSpec, options: TrainingOptions) -> tuple[int, int, float]:
    """The run's epochs, batch size and learning rate: the options', else the spec's (its card's) defaults."""
    epochs = spec.epochs if options.epochs is None else options.epochs
    batch_size = spec.batch_size if options.batch_size is None else options.batch_size
    lr = spec.lr if options.lr is None else options.lr
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1 and lr > 0, got {epochs}, {batch_size}, {lr}")
    return epochs, batch_size, lr


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``threads`` (None: unchanged) for the block, the old value restored after."""
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[torch.Generator]:
    """Seed torch's global RNG (it initialises the weights) inside ``fork_rng``, and yield a CPU generator seeded
    alike for everything the recipe draws itself (shuffles, augmentation, noise, attack starts)."""
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)


@dataclass(frozen=True)
class NetRun:
    """A net recipe's run with every default filled in, inside its thread and seed set-up."""

    spec: OpponentSpec
    pack: DataPack
    device: torch.device
    epochs: int
    batch_size: int
    lr: float
    seed: int
    generator: torch.Generator
    models_dir: Path
    progress: bool


@contextmanager
def net_run(spec: OpponentSpec, options: TrainingOptions) -> Iterator[NetRun]:
    """Resolve ``options`` against ``spec``, then hold the run's threads and seeding for the block."""
    epochs, batch_size, lr = hyperparameters(spec, options)
    models_dir = options.output_dir()
    pack = get_pack(spec.pack_name, options.data_dir)
    device = resolve_device(options.device)
    with torch_threads(options.threads), seeded(options.seed, device) as generator:
        yield NetRun(spec, pack, device, epochs, batch_size, lr, options.seed, generator, models_dir, options.progress)

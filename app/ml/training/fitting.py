"""What the net recipes share inside their training loops: augmentation, the one-cycle AdamW optimiser, shuffled
batches, the gradient step, the progress bar and log lines."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from rich.progress import Progress, TaskID
from torch import Tensor, nn

from app.ml.measure.evaluation import progress_bar

MAX_SHIFT = 2
AUGMENTATION = f"random horizontal flip, random shift of up to {MAX_SHIFT} px in each direction (zero fill)"
WEIGHT_DECAY = 5e-4
LOG_EVERY = 50  # batches between progress lines in the log (for runs in the background)


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random horizontal flip and a random per-image shift: cheap, and worth about a point of test accuracy."""
    b, _, h, w = images.shape
    flip = torch.rand(b, generator=generator) < 0.5
    images = torch.where(flip.view(b, 1, 1, 1), images.flip(3), images)
    padded = F.pad(images, (MAX_SHIFT,) * 4)
    dy = torch.randint(0, 2 * MAX_SHIFT + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * MAX_SHIFT + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    return padded[torch.arange(b)[:, None, None, None], torch.arange(images.shape[1])[None, :, None, None], rows, cols]


def batches_per_epoch(examples: int, batch_size: int) -> int:
    return (examples + batch_size - 1) // batch_size


def one_cycle_adamw(
    net: nn.Module, lr: float, epochs: int, steps_per_epoch: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.OneCycleLR]:
    """AdamW with the house weight decay and a one-cycle learning rate peaking at ``lr``."""
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch)
    return optimizer, schedule


def shuffled_batches(
    examples: int, batch_size: int, generator: torch.Generator, batches: int | None = None
) -> Iterator[tuple[int, Tensor]]:
    """One epoch of a fresh random order: each batch's number and example indices, for ``batches`` batches (by
    default all of them, the last one partial)."""
    order = torch.randperm(examples, generator=generator)
    for batch_no in range(batches_per_epoch(examples, batch_size) if batches is None else batches):
        yield batch_no, order[batch_no * batch_size : (batch_no + 1) * batch_size]


def descend(
    loss: Tensor, optimizer: torch.optim.Optimizer, schedule: torch.optim.lr_scheduler.LRScheduler | None = None
) -> None:
    """One gradient step on ``loss``, then one step of the learning-rate schedule where there is one."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if schedule is not None:
        schedule.step()


@dataclass
class TrainingProgress:
    """A training loop's progress bar (``advance`` after each batch) and its log line every ``every`` batches."""

    bar: Progress
    task: TaskID
    log: logging.Logger
    epochs: int
    steps_per_epoch: int
    every: int
    started: float

    def advance(self) -> None:
        self.bar.advance(self.task)

    def seconds(self) -> float:
        """Since the run started."""
        return time.perf_counter() - self.started

    def log_batch(self, epoch: int, batch_no: int, detail: str, *values: float) -> None:
        """``epoch e/E batch b/B <detail % values> (s)`` on the first batch and every ``every`` after it."""
        if batch_no % self.every == 0:
            self.log.info(
                f"epoch %d/%d batch %d/%d {detail} (%.0f s)",
                epoch + 1,
                self.epochs,
                batch_no,
                self.steps_per_epoch,
                *values,
                self.seconds(),
            )


@contextmanager
def training_progress(
    enabled: bool,
    description: str,
    log: logging.Logger,
    epochs: int,
    steps_per_epoch: int,
    *,
    every: int = LOG_EVERY,
    started: float | None = None,
) -> Iterator[TrainingProgress]:
    """The bar (shown when ``enabled``) for ``epochs`` of ``steps_per_epoch`` batches, and the log it writes to; the
    run's clock starts now unless ``started`` says when it did."""
    with progress_bar(enabled) as bar:
        task = bar.add_task(description, total=epochs * steps_per_epoch)
        clock = time.perf_counter() if started is None else started
        yield TrainingProgress(bar, task, log, epochs, steps_per_epoch, every, clock)


def one_cycle_recipe(lr: float) -> dict[str, str]:
    """How the card describes :func:`one_cycle_adamw` and :func:`augment`."""
    return {
        "optimizer": f"AdamW (weight decay {WEIGHT_DECAY})",
        "schedule": f"one-cycle learning rate, peak {lr}",
        "augmentation": AUGMENTATION,
    }

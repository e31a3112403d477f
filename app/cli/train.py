"""Training commands: `arena train` (an opponent), `arena train-advgan` (an attack's generator) and `arena eligible`
(the record of test images an opponent gets right, which training invalidates)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress

from app.cli.common import Device, Threads, fail, failing_cleanly, machine_threads
from app.config import get_settings
from app.ml.opponents import cards


def train(
    pack: Annotated[str, typer.Option(help="Data pack whose default opponent to train.")] = "fashion",
    opponent: Annotated[
        str | None, typer.Option(help="Train this opponent by name instead (e.g. fashion-resnet, fashion-forest).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for weights, shuffling and the card's attack evaluation.")] = 0,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: the recipe's).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default: the recipe's).")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default: the recipe's).")] = None,
    device: Device = "cpu",
    threads: Threads = 0,
) -> None:
    """Train the pack's opponent, save models/<name>.safetensors and rewrite its model card (with progress)."""
    # torch and the recipes take seconds to import; `arena --help` need not.
    from app.ml.packs import DataPackMissing
    from app.ml.training.command import summary, train_named, train_pack
    from app.ml.training.options import TrainingOptions

    settings = get_settings()
    with failing_cleanly(
        DataPackMissing,
        KeyError,
        ValueError,
        RuntimeError,
        interrupted="the previous checkpoint and card were left as they were",
        unquoted_key_errors=True,
    ):
        options = TrainingOptions(
            seed=seed,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            device=device,
            models_dir=settings.models_dir,
            data_dir=settings.data_dir,
            threads=machine_threads(threads),
        )
        card = (train_pack if opponent is None else train_named)(pack if opponent is None else opponent, options)
    typer.echo(summary(card))
    refresh_eligibility(str(card["name"]), device)


def refresh_eligibility(name: str, device: str = "cpu") -> None:
    """After training: the committed eligible-image record is keyed by the card (which pins the new checkpoint),
    so it is rewritten too, else every start would ask the model about all test images again."""
    from app.ml.opponents.eligibility import refresh_record  # loads torch; `arena --help` need not

    settings = get_settings()
    typer.echo(f"{name}: asking it about every test image for models/{name}.eligible.json ...")
    path, correct, total = refresh_record(
        name, models_dir=settings.models_dir, data_dir=settings.data_dir, device=device
    )
    typer.echo(f"{name}: {correct} of {total} test images right when clean; wrote {path}")


def eligible(
    opponent: Annotated[
        list[str] | None, typer.Option(help="Opponent (repeatable); default: every opponent with a card here.")
    ] = None,
    device: Device = "cpu",
    threads: Threads = 0,
) -> None:
    """Write models/<name>.eligible.json: the test images each opponent gets right when clean, the images its
    rounds are drawn from. The model service reads it instead of asking the model about all of them at start."""
    # The registry and the eligibility record load torch; `arena --help` need not.
    from app.ml.opponents.eligibility import refresh_record
    from app.ml.opponents.registry import OpponentCorrupt, OpponentMissing
    from app.ml.opponents.specs import available_opponents
    from app.ml.packs import DataPackMissing

    settings = get_settings()
    names = opponent or [n for n in available_opponents() if cards.card_path(settings.models_dir, n).is_file()]
    if not names:
        fail(f"no model cards in {settings.models_dir}: train an opponent first (make train)")
    with Progress() as progress:
        for name in names:
            task = progress.add_task(name, total=None)
            with failing_cleanly(
                KeyError, ValueError, OpponentMissing, OpponentCorrupt, DataPackMissing, unquoted_key_errors=True
            ):
                path, correct, total = refresh_record(
                    name,
                    models_dir=settings.models_dir,
                    data_dir=settings.data_dir,
                    device=device,
                    threads=machine_threads(threads),
                    progress=lambda done, task=task: progress.advance(task, done),
                )
            progress.update(task, total=total, completed=total)
            progress.console.print(f"{name}: {correct} of {total} right when clean ({correct / total:.1%}); {path}")


def train_advgan(
    opponent: Annotated[str, typer.Option(help="The opponent the generator learns to fool.")] = "fashion-cnn",
    seed: Annotated[int, typer.Option(help="Seed for weights, shuffling and the eps draws.")] = 0,
    epochs: Annotated[int, typer.Option(help="Passes over the training images.")] = 1,
    max_batches: Annotated[int | None, typer.Option(help="Cap on batches per epoch (quick trials).")] = None,
    width: Annotated[int, typer.Option(help="Generator width (channels of its first layer).")] = 16,
    threads: Threads = 0,
    device: Device = "cpu",
) -> None:
    """Train an AdvGAN generator against an opponent; write models/advgan-<opponent>.safetensors and its card."""
    # torch and the attacks take seconds to import; `arena --help` need not.
    from app.ml.measure.commands import train_advgan as run
    from app.ml.opponents.registry import OpponentMissing
    from app.ml.packs import DataPackMissing

    with failing_cleanly(
        ValueError,
        KeyError,
        FileNotFoundError,
        OpponentMissing,
        DataPackMissing,
        interrupted="the previous generator and card were left as they were",
    ):
        line = run(
            opponent=opponent,
            seed=seed,
            epochs=epochs,
            max_batches=max_batches,
            width=width,
            threads=machine_threads(threads),
            device=device,
        )
    typer.echo(line)

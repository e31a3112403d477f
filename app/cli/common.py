"""What every `arena` command shares: its common options, and turning the errors a user can fix into one red line
and exit code 1 instead of a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal, NoReturn

import typer

from app.config import get_settings

# Options several commands share, spelled once so their help reads the same everywhere.
Device = Annotated[Literal["cpu", "cuda"], typer.Option(help="Where torch runs.")]
# 0 means what ARENA_TORCH_THREADS's 0 means (app/ml/service/worker_device.py: worker_threads), so the default follows
# the machine the command runs on.
Threads = Annotated[int, typer.Option(min=0, help="torch CPU threads; 0: all cores but one (at least 1).")]
ThreadsOrTorchDefault = Annotated[int | None, typer.Option(help="torch CPU threads (default: torch's).")]
RandomDrawsSeed = Annotated[int, typer.Option(help="Seed of the per-image random draws.")]
RandomStartsSeed = Annotated[int, typer.Option(help="Seed of the per-image random starts.")]


def machine_threads(requested: int) -> int:
    """--threads as torch is given it: ``requested``, or for 0 every core but one (at least 1)."""
    from app.ml.service.worker_device import worker_threads  # loads torch; called only by commands that use it

    return worker_threads(requested)


def fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@contextmanager
def failing_cleanly(
    *errors: type[Exception], interrupted: str | None = None, unquoted_key_errors: bool = False
) -> Iterator[None]:
    """Any of ``errors`` ends the command with its message; Ctrl-C with ``interrupted: <what was left>``.

    ``unquoted_key_errors``: a KeyError (an unknown attack or opponent name, whose message lists the valid ones) is
    shown without the quotes ``str(KeyError)`` adds; the commands that never did so keep their output unchanged."""
    try:
        yield
    except errors as error:
        if unquoted_key_errors and isinstance(error, KeyError) and error.args:
            fail(str(error.args[0]))
        fail(str(error))
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        fail(f"interrupted: {interrupted}")


def check_opponent_ready() -> None:
    """Fail before the server starts, with the fix, rather than with a traceback inside the lifespan."""
    # The packs and the registry load numpy and torch; `arena --help` need not.
    from app.ml.opponents.registry import OpponentMissing
    from app.ml.opponents.specs import opponent_pack
    from app.ml.packs import DataPackMissing, get_pack

    settings = get_settings()
    with failing_cleanly(DataPackMissing, OpponentMissing):
        get_pack(opponent_pack(settings.opponent), settings.data_dir).load_split("test")
    checkpoint = Path(settings.models_dir) / f"{settings.opponent}.safetensors"
    if not checkpoint.is_file():
        fail(f"no checkpoint {checkpoint}; train it with `arena train --pack fashion`")

"""Background tasks the long-lived services run (the batcher, the pool's refiller, the cloak's sweeper, the remote
service's monitor): one way to stop them."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has finished; its cancellation is the expected outcome, not an error."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

"""The uvicorn server of `arena serve`, which ends the app's event streams as soon as it is told to stop.

On SIGTERM (docker stop) or Ctrl-C, uvicorn stops accepting connections, waits up to its graceful shutdown timeout
for open responses to finish, and only then runs the lifespan shutdown (the model service, the database, the
cloak's clean-up of uploads). Event streams never finish by themselves, so without this every stop would wait the
whole timeout, cancel them, and, past docker's grace period, end in SIGKILL before the clean-up."""

from __future__ import annotations

from collections.abc import Callable
from types import FrameType

import uvicorn


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, *, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.on_exit()
        super().handle_exit(sig, frame)

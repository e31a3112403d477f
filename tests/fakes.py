"""The one fake model service of the test suite: a ModelService without torch, for tests of what stands in front of
one (the ready-round pool, the HTTP server and client). Each test gives it the opponent and the answer it needs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from app.errors import ServiceUnavailable
from app.ml.service.contracts import AttackCatalog, ImageJob, ImageResult, OpponentInfo, freeze_catalog
from app.ml.service.text_contracts import TextClassifyResult, TextJob, TextOpponentInfo, TextResult

PGD_ONLY = freeze_catalog([{"name": "pgd", "norm": "linf", "threat_model": "white-box", "params": []}])


class FakeModelService:
    """Serves one opponent (``info``) and answers every job with ``answer(job)``.

    It records every job it was asked (``jobs``) and, for each, the jobs still running when it arrived
    (``running_at_arrival``). While ``fail`` is set, generate() and opponent_info() raise it; while ``gate`` is set,
    the jobs that ``waits(job)`` picks wait for it before they are answered; ``ready`` is what health() says."""

    def __init__(
        self,
        info: OpponentInfo,
        answer: Callable[[ImageJob], ImageResult],
        *,
        catalog: AttackCatalog = PGD_ONLY,
        waits: Callable[[ImageJob], bool] = lambda job: True,
        text_answer: Callable[[TextJob], TextResult] | None = None,
        text_infos: tuple[TextOpponentInfo, ...] = (),
    ) -> None:
        self.info = info
        self.text_answer = text_answer
        self.text_infos = text_infos
        self.text_jobs: list[TextJob] = []
        self.answer = answer
        self.catalog = catalog
        self.waits = waits
        self.jobs: list[ImageJob] = []
        self.running: list[ImageJob] = []
        self.running_at_arrival: list[tuple[ImageJob, ...]] = []
        self.fail: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.ready = True

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def opponent_info(self, name: str) -> OpponentInfo:
        if self.fail is not None:
            raise self.fail
        return self.info

    def opponent_names(self) -> list[str]:
        return [self.info.name]

    def attack_catalog(self) -> AttackCatalog:
        return self.catalog

    async def health(self) -> dict[str, Any]:
        return {"ok": self.ready, "device": "cpu", "opponents": [self.info.name], "queue": 0}

    async def generate(self, job: ImageJob) -> ImageResult:
        self.jobs.append(job)
        self.running_at_arrival.append(tuple(self.running))
        self.running.append(job)
        try:
            if self.gate is not None and self.waits(job):
                await self.gate.wait()
            if self.fail is not None:
                raise self.fail
            await asyncio.sleep(0)
            return self.answer(job)
        finally:
            self.running.remove(job)

    # Text rounds: answered by ``text_answer`` (tests of the text game); without one, the service has no text.
    async def text(self, job: TextJob) -> TextResult:
        if self.text_answer is None:
            raise ServiceUnavailable("this fake model service plays no text rounds")
        if self.fail is not None:
            raise self.fail
        self.text_jobs.append(job)
        await asyncio.sleep(0)
        return self.text_answer(job)

    async def classify_text(
        self, opponent: str, texts: list[str], client: str = "", share: str = ""
    ) -> TextClassifyResult:
        if not self.text_infos:
            raise ServiceUnavailable("this fake model service plays no text rounds")
        labels = self.text_infos[0].class_names
        return TextClassifyResult([[1.0 / len(labels)] * len(labels) for _ in texts], labels)

    async def text_opponents(self) -> tuple[TextOpponentInfo, ...]:
        return self.text_infos

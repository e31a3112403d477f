"""The in-process model service's text operations (issue #18): text rounds and classifications in their own fair
lane (app/ml/service/text_lane.py), edit similarity batched across players (app/ml/service/text_similarity.py), all on
the worker thread that holds the models, so a text never runs beside an image batch on the CPU."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.ml.service.admission import AdmissionBudget
from app.ml.service.text_contracts import TextClassifyResult, TextJob, TextOpponentInfo, TextResult, check_classify
from app.ml.service.text_edit_contracts import TextSimilarityJob, TextSimilarityResult
from app.ml.service.text_lane import TextLane
from app.ml.service.text_similarity import SimilarityBatcher
from app.ml.text.service import TextWorker


class TextOps:
    """Owned by InProcessModelService once it has started; models load on first use."""

    def __init__(
        self,
        executor: ThreadPoolExecutor,
        names: Sequence[str],
        models_dir: Any,
        *,
        max_batch: int,
        max_wait_s: float,
        queue_size: int,
        timeout_s: float,
        admission: AdmissionBudget,
    ) -> None:
        self._executor = executor
        self._max_wait_s = max_wait_s
        self._timeout_s = timeout_s
        self.worker = TextWorker(tuple(names), models_dir)
        self.lane = TextLane(
            self._texts_on_worker,
            self._classify_on_worker,
            max_batch=max_batch,
            max_wait_s=max_wait_s,
            queue_size=queue_size,
            timeout_s=timeout_s,
            admission=admission,
        )
        self._similarity: SimilarityBatcher | None = None

    def start(self) -> None:
        self.lane.start()

    async def stop(self) -> None:
        if self._similarity is not None:
            self._similarity.stop()
            self._similarity = None
        await self.lane.stop()

    async def text(self, job: TextJob) -> TextResult:
        """One text round (app/ml/text/service.py), queued in the text lane."""
        job.validate()
        self.worker.check(job.opponent)  # an opponent that is not here is refused before it queues
        return await self.lane.text(job)

    async def classify_text(self, opponent: str, texts: list[str], client: str, share: str = "") -> TextClassifyResult:
        """A text opponent's probabilities for each text, in the order of the result's labels (no attack), in
        ``share``'s turns of the text lane."""
        texts = check_classify(opponent, texts)
        self.worker.check(opponent)
        return await self.lane.classify(opponent, texts, client, share)

    async def text_similarity(self, original: str, edited: str, client: str) -> TextSimilarityResult:
        """MiniLM cosine of an edit to its original and the attacks' floor, batched with every player's edits."""
        if self._similarity is None:
            self._similarity = SimilarityBatcher(self._executor, max_wait_s=self._max_wait_s, timeout_s=self._timeout_s)
        return await self._similarity.similarity(TextSimilarityJob(original, edited, client))

    def text_opponents(self) -> tuple[TextOpponentInfo, ...]:
        """The text opponents whose checkpoints and cards are here (read from the cards: nothing is loaded)."""
        return self.worker.infos()

    async def _texts_on_worker(self, jobs: list[TextJob]) -> list[TextResult]:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.worker.run, jobs)

    async def _classify_on_worker(self, opponent: str, batches: list[list[str]]) -> list[TextClassifyResult]:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.worker.classify, opponent, batches)

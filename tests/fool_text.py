"""A model service for the fool-the-machine tests: the suite's fake for images (tests/fakes.py) plus the real text
ops, the committed TF-IDF and MiniLM opponents answering ``classify_text`` and the real MiniLM batcher answering
``text_similarity``, so every figure the editor shows in a test is one a real opponent computed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.ml.service.contracts import OpponentInfo
from app.ml.service.text_contracts import TextClassifyResult
from app.ml.service.text_edit_contracts import TextSimilarityJob, TextSimilarityResult
from tests.fakes import FakeModelService

INFO = OpponentInfo(
    name="toy", pack="fashion", class_names=tuple("abcdefghij"), eligible_indices=(0,), min_eps=0.05, clean_accuracy=1
)


class TextEditingService(FakeModelService):
    def __init__(self) -> None:
        super().__init__(INFO, lambda job: (_ for _ in ()).throw(AssertionError("no image rounds here")))
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="text-worker")
        self.opponents: dict[str, Any] = {}
        self.batcher: Any = None
        self.classified: list[tuple[str, tuple[str, ...], str]] = []
        self.shares: list[str] = []  # each classification's share key, in order
        self.measured: list[tuple[str, str, str]] = []

    async def start(self) -> None:
        from app.ml.service.text_similarity import SimilarityBatcher

        self.batcher = SimilarityBatcher(self.worker)

    async def stop(self) -> None:
        if self.batcher is not None:
            self.batcher.stop()

    def opponent(self, name: str) -> Any:
        if name not in self.opponents:
            from app.ml.text.opponents import load_text_opponent

            self.opponents[name] = load_text_opponent(name)
        return self.opponents[name]

    async def classify_text(
        self, opponent: str, texts: Sequence[str], client: str = "", share: str = ""
    ) -> TextClassifyResult:
        self.classified.append((opponent, tuple(texts), client))
        self.shares.append(share)
        model = self.opponent(opponent)
        rows = await asyncio.get_running_loop().run_in_executor(self.worker, model.predict_proba, list(texts))
        return TextClassifyResult([[float(p) for p in row] for row in rows], tuple(model.class_names))

    async def text_similarity(self, original: str, edited: str, client: str = "") -> TextSimilarityResult:
        self.measured.append((original, edited, client))
        result: TextSimilarityResult = await self.batcher.similarity(TextSimilarityJob(original, edited, client))
        return result


TOOTH = 1  # test text 1: "small elevation on the grinding surface of a tooth", body part to TF-IDF
FOOLING = "little elevation on the grinding surface of a tooth"  # TF-IDF: made object, 1 word of 9 changed
HOLDING = "small elevation on the grinding face of a tooth"  # within the rules; TF-IDF still says body part


def fool_client(database_url: str, **settings: object) -> Any:
    """A started TestClient whose model service is :class:`TextEditingService`, and that service."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from tests.conftest import make_settings

    service = TextEditingService()
    client = TestClient(create_app(make_settings(database_url, **settings), model_service=service))
    return client, service

"""The text half of the in-process model service: what runs on the worker thread for a text round or a
classification (contracts in app/ml/service/text_contracts.py; the lane that batches them is
app/ml/service/text_lane.py).

Everything loads on first use, on the worker thread: the definitions pack (a few seconds of WordNet reading), each
opponent's checkpoint and, for MiniLM or any attack, the all-MiniLM-L6-v2 encoder. A service that never plays a
text round never pays for them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.config import get_settings
from app.errors import ServiceUnavailable
from app.ml.opponents.cards import card_path, read_card
from app.ml.packs.text.definitions import DEFAULT_SEED, PACK_NAME, TextPack, definitions_pack
from app.ml.packs.text.tokens import words
from app.ml.service.text_contracts import TextClassifyResult, TextJob, TextOpponentInfo, TextResult
from app.ml.text import attacks
from app.ml.text.opponents import TEXT_OPPONENTS, TRANSFER_SURROGATE, TextOpponent, load_text_opponent

logger = logging.getLogger(__name__)

DRAW_CANDIDATES = 8  # test texts drawn per round; the first the opponent gets right is played


class TextWorker:
    """Text opponents and their pack, loaded on first use. Not thread-safe: one worker thread calls it."""

    def __init__(self, names: Sequence[str], models_dir: Path | None = None) -> None:
        self.models_dir = Path(models_dir) if models_dir is not None else get_settings().models_dir
        self.names = tuple(n for n in names if n in TEXT_OPPONENTS and card_path(self.models_dir, n).is_file())
        self._opponents: dict[str, TextOpponent] = {}
        self._pack: TextPack | None = None

    def infos(self) -> tuple[TextOpponentInfo, ...]:
        out = []
        for name in self.names:
            card = read_card(card_path(self.models_dir, name))
            data = card.get("data", {})
            out.append(
                TextOpponentInfo(
                    name=name,
                    pack=str(card.get("pack", PACK_NAME)),
                    class_names=tuple(data.get("class_names", ())),
                    clean_accuracy=float(card.get("clean_accuracy", {}).get("accuracy", 0.0)),
                    test_size=int(data.get("test_size", 0)),
                    description=str(card.get("description", "")),
                )
            )
        return tuple(out)

    def opponent(self, name: str) -> TextOpponent:
        if name not in self.names and name not in TRANSFER_SURROGATE.values():
            raise ServiceUnavailable(f"text opponent {name!r} is not loaded in the model service")
        found = self._opponents.get(name)
        if found is None:
            found = self._opponents[name] = load_text_opponent(name, self.models_dir)
            logger.info("text opponent %s loaded", name)
        return found

    def check(self, name: str) -> None:
        if name not in self.names:
            raise ServiceUnavailable(f"text opponent {name!r} is not loaded in the model service")

    @property
    def pack(self) -> TextPack:
        if self._pack is None:
            self._pack = definitions_pack(DEFAULT_SEED)
        return self._pack

    # -- the operations ----------------------------------------------------------------------------------------

    def classify(self, name: str, batches: Sequence[Sequence[str]]) -> list[TextClassifyResult]:
        """Several callers' texts in one call of the opponent."""
        self.check(name)
        model = self.opponent(name)
        flat = [text for texts in batches for text in texts]
        probabilities = model.predict_proba(flat) if flat else np.zeros((0, len(model.class_names)))
        out, start = [], 0
        for texts in batches:
            rows = probabilities[start : start + len(texts)]
            start += len(texts)
            out.append(TextClassifyResult([[float(p) for p in row] for row in rows], tuple(model.class_names)))
        return out

    def choose_text(self, model: TextOpponent, job: TextJob) -> tuple[int, np.ndarray]:
        """The job's test text (its index and the opponent's clean probabilities on it)."""
        test = self.pack.test
        if job.text_index >= 0:
            if job.text_index >= len(test):
                raise ServiceUnavailable(f"the text pack has {len(test)} test texts, not {job.text_index + 1}")
            return job.text_index, model.predict_proba([test.texts[job.text_index]])[0]
        rng = np.random.default_rng((job.seed, 18))
        candidates = [int(i) for i in rng.choice(len(test), size=DRAW_CANDIDATES, replace=False)]
        probabilities = model.predict_proba([test.texts[i] for i in candidates])
        for i, row in zip(candidates, probabilities, strict=True):
            if int(np.argmax(row)) == int(test.labels[i]):
                return i, row
        return candidates[0], probabilities[0]

    def run(self, jobs: Sequence[TextJob]) -> list[TextResult]:
        return [self.run_one(job) for job in jobs]

    def run_one(self, job: TextJob) -> TextResult:
        started = time.perf_counter()
        self.check(job.opponent)
        model = self.opponent(job.opponent)
        index, clean_probabilities = self.choose_text(model, job)
        text, label = self.pack.test.texts[index], int(self.pack.test.labels[index])
        n_words = len(words(text))
        if job.condition == "clean":
            shown, changed, queries, similarity, probabilities = text, (), 1, 1.0, clean_probabilities
        else:
            outcome = self.attack(model, job, text, label, n_words)
            shown, changed, queries, similarity = outcome.text, outcome.changed, outcome.queries, outcome.similarity
            # The opponent's full answer on the shown text (the attack keeps only its top class).
            probabilities = model.predict_proba([shown])[0]
        answer = int(np.argmax(probabilities))
        return TextResult(
            opponent=job.opponent,
            attack=job.attack,
            condition=job.condition,
            budget=float(job.budget),
            seed=int(job.seed),
            text_index=index,
            original=text,
            shown=shown,
            changed=tuple(int(c) for c in changed),
            n_words=n_words,
            true_label=label,
            answer=answer,
            probabilities=tuple(float(p) for p in probabilities),
            confidence=float(probabilities[answer]),
            clean_answer=int(np.argmax(clean_probabilities)),
            queries=int(queries),
            similarity=float(similarity),
            labels=tuple(model.class_names),
            elapsed_ms=round((time.perf_counter() - started) * 1000, 2),
        )

    def attack(
        self, model: TextOpponent, job: TextJob, text: str, label: int, n_words: int
    ) -> attacks.TextAttackResult:
        if job.condition == "random_swap":  # the control: as many random synonym swaps as the budget allows
            counts = [attacks.max_changes(n_words, job.budget)]
            return attacks.random_synonyms(model, [text], [label], counts, job.seed)[0]
        if job.attack == "textfooler":
            return attacks.textfooler(model, [text], [label], job.budget, job.seed)[0]
        if job.attack == "deepwordbug":
            return attacks.deepwordbug(model, [text], [label], job.budget, job.seed)[0]
        surrogate = self.opponent(TRANSFER_SURROGATE[job.opponent])
        return attacks.transfer(model, surrogate, [text], [label], job.budget, job.seed)[0]

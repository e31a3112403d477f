"""A deterministic text model service for the text game's tests: text i defines class i % 8; the attacked text has
its second word swapped and the machine answers (i + 1) % 8 (fooled), except under the clean condition."""

from __future__ import annotations

from app.game.text import TEXT_CLASS_NAMES
from app.ml.service.text_contracts import TextJob, TextOpponentInfo, TextResult

ORIGINAL = "a large <b>feline</b> of open country"


class KnownTexts:
    def __init__(self) -> None:
        self.jobs: list[TextJob] = []

    async def text_opponents(self) -> tuple[TextOpponentInfo, ...]:
        return (
            TextOpponentInfo("definitions-tfidf", "definitions", TEXT_CLASS_NAMES, 0.85, 2560),
            TextOpponentInfo("definitions-minilm", "definitions", TEXT_CLASS_NAMES, 0.9, 2560),
        )

    async def text(self, job: TextJob) -> TextResult:
        self.jobs.append(job)
        index = len(self.jobs) + 2
        truth = index % 8
        clean = job.condition == "clean"
        answer = truth if clean else (truth + 1) % 8
        probabilities = [0.02] * 8
        probabilities[answer] = 0.86
        shown = ORIGINAL if clean else ORIGINAL.replace("large", "big")
        return TextResult(
            opponent=job.opponent,
            attack=job.attack,
            condition=job.condition,
            budget=job.budget,
            seed=job.seed,
            text_index=index,
            original=ORIGINAL,
            shown=shown,
            changed=() if clean else (1,),
            n_words=7,
            true_label=truth,
            answer=answer,
            probabilities=tuple(probabilities),
            confidence=0.86,
            clean_answer=truth,
            queries=1 if clean else 20,
            similarity=1.0 if clean else 0.93,
            labels=TEXT_CLASS_NAMES,
            clean_confidence=0.9,
        )

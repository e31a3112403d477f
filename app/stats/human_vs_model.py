"""People and the model scored on the very same answers: the counts every humans-vs-machine figure is made of."""

from __future__ import annotations

from dataclasses import dataclass

from app.stats.intervals import Proportion


@dataclass(frozen=True)
class HumanVsModel:
    """Of ``n`` answers, how many the people and how many the model got right, with 95% Wilson intervals."""

    n: int
    human_correct: int
    model_correct: int

    @property
    def human(self) -> Proportion:
        return Proportion(self.human_correct, self.n)

    @property
    def model(self) -> Proportion:
        return Proportion(self.model_correct, self.n)

    @property
    def human_accuracy(self) -> float:
        return self.human.value

    @property
    def model_accuracy(self) -> float:
        return self.model.value

    @property
    def human_ci(self) -> tuple[float, float]:
        return self.human.interval

    @property
    def model_ci(self) -> tuple[float, float]:
        return self.model.interval

"""The per-player difficulty staircase.

Rule (1-up/1-down): every player starts on the lowest step. A correct answer moves one step up (a larger eps, a
stronger perturbation); a wrong answer moves one step down; the ends hold. The lowest step is the opponent's
``min_eps`` from its model card: the smallest budget at which PGD-20 fools the opponent on at least half of the
test images it gets right when clean. So every step is a budget where the machine is usually fooled, and the
staircase hunts for the budget where the player starts to be fooled too.
"""

from __future__ import annotations

from dataclasses import dataclass

STEP_RATIO = 1.25
MAX_EPS = 0.3
MAX_STEPS = 12


@dataclass(frozen=True)
class Staircase:
    levels: tuple[float, ...]

    @classmethod
    def from_min_eps(cls, min_eps: float, *, ratio: float = STEP_RATIO, max_eps: float = MAX_EPS) -> Staircase:
        """Geometric steps from min_eps, each rounded to a whole grey level (x/255) so the UI can show it exactly."""
        if not 0 < min_eps <= max_eps:
            raise ValueError(f"min_eps must be in (0, {max_eps}], got {min_eps}")
        levels: list[float] = []
        eps = min_eps
        while eps <= max_eps + 1e-9 and len(levels) < MAX_STEPS:
            grey = max(1, round(eps * 255))
            if not levels or grey > round(levels[-1] * 255):
                levels.append(grey / 255)
            eps *= ratio
        return cls(tuple(levels))

    @property
    def top(self) -> int:
        return len(self.levels) - 1

    def clamp(self, level: int) -> int:
        return min(max(level, 0), self.top)

    def eps(self, level: int) -> float:
        return self.levels[self.clamp(level)]

    def next_level(self, level: int, *, correct: bool) -> int:
        return self.clamp(level + (1 if correct else -1))


def eps_as_grey_levels(eps: float) -> str:
    """eps in the units people can picture: grey levels out of 255."""
    return f"{round(eps * 255)}/255"

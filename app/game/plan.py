"""What a new round will be: the opponent, the attack and its parameters, the budget and the condition, chosen
from the settings, the player's choice or an event's, and the image job that asks the model service for it."""

from __future__ import annotations

import dataclasses
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app import messages
from app.config import Settings
from app.errors import Invalid
from app.game import conditions
from app.game.catalogue import OpponentSource, playable_attacks, transfer_surrogate
from app.game.difficulty import Staircase
from app.ml.service.contracts import ImageJob, OpponentInfo

# What a round asks of each attack beyond its library defaults: query budgets bounded so that one image costs
# about a second of one CPU core at most (benchmarks/RESULTS.md, "Round attacks"), since slow attacks share the model
# worker with everyone else's rounds; and a margin past the decision boundary for the attacks that stop right on it,
# so that rounding the image to whole grey levels does not undo them. PGD's steps come from ARENA_ATTACK_STEPS.
ROUND_ATTACK_PARAMS: dict[str, dict[str, Any]] = {
    "cw": {"steps": 60, "binary_search_steps": 3, "confidence": 1.0},
    "deepfool": {"overshoot": 0.2},
    "deepfool-linf": {"overshoot": 0.2},
    "square": {"max_queries": 500},
    "nes": {"max_queries": 500},
    "hopskipjump": {"max_queries": 500},
    "genattack": {"max_queries": 500},
    "one-pixel": {"max_queries": 500, "pixels": 3},
    "evadehc": {"max_queries": 500},
}

# The attack a round falls back to against an opponent without gradients, when the chosen default is white-box.
GRADIENT_FREE_DEFAULTS = ("transfer", "square")


@dataclass(frozen=True)
class RoundPlan:
    """Which opponent, attack and parameters a new round uses: chosen by settings, by the player, or by an event."""

    opponent: str
    attack: str = "pgd"
    steps: int = 20
    condition: str = "adversarial"  # app/game/conditions.py
    surrogate: str | None = None  # transfer rounds: the model the attack is crafted on
    # parameters that replace the round defaults: a defended opponent's card names its adaptive attack's
    overrides: tuple[tuple[str, Any], ...] = ()
    # PGD stops per image once the shown (rounded) image fools the opponent (ARENA_ATTACK_EARLY_STOP, issue 15)
    early_stop: bool = False

    def with_condition(self, condition: str, surrogate: str | None = None) -> RoundPlan:
        """The plan under a science-mode condition. A transfer round swaps the attack for the transfer attack,
        crafted on ``surrogate`` with this plan's PGD steps."""
        attack = "transfer" if condition == "transfer" else self.attack
        if condition == "transfer":
            return RoundPlan(self.opponent, attack, self.steps, condition, surrogate)
        return dataclasses.replace(self, attack=attack, condition=condition)

    def attack_params(self) -> dict[str, Any]:
        # PGD's iterations and random start are the game's choice; other attacks get the bounded round budgets.
        if self.overrides:
            return dict(self.overrides)
        if self.attack == "pgd":
            # Early stopping judges the attack's own image: a control condition shows something else, so its PGD
            # runs every step (the flipped image is the attack's change negated, the noise and clean ones none).
            stop = self.early_stop and self.condition == "adversarial"
            return {"steps": self.steps, "random_start": True, **({"stop_on_shown": True} if stop else {})}
        if self.attack == "transfer":
            return {"steps": self.steps, **({"surrogate": self.surrogate} if self.surrogate else {})}
        return dict(ROUND_ATTACK_PARAMS.get(self.attack, {}))


def default_plan(settings: Settings) -> RoundPlan:
    """The plan of a round nobody chose anything for: ARENA_OPPONENT, ARENA_ATTACK and ARENA_ATTACK_STEPS."""
    return RoundPlan(
        opponent=settings.opponent,
        attack=settings.attack,
        steps=settings.attack_steps,
        early_stop=settings.attack_early_stop,
    )


TASKS = ("classify", "guess_machine")


def draw_task(guess_share: float) -> str:
    """guess_machine with probability ``guess_share``, else classify."""
    return "guess_machine" if secrets.randbelow(1_000_000) < guess_share * 1_000_000 else "classify"


def check_task(task: str) -> str:
    if task not in TASKS:
        raise Invalid(messages.ROUND_TASK_UNKNOWN.format(valid=", ".join(TASKS)))
    return task


def choose_plan(
    source: OpponentSource,
    *,
    default: RoundPlan,
    opponent: str | None = None,
    attack: str | None = None,
    mix: Mapping[str, float] | None = None,
) -> RoundPlan:
    """The plan for a round the player asked for: their opponent and attack, or the defaults, under a condition
    drawn from ``mix`` (science mode; plain play is adversarial only). Unknown or impossible choices are refused
    with the valid ones listed."""
    offered = source.opponent_names()
    name = opponent or default.opponent
    if name not in offered:
        raise Invalid(messages.ROUND_OPPONENT_UNKNOWN.format(name=name, valid=", ".join(offered)))
    info = source.opponent_info(name)
    valid = playable_attacks(source, info)
    chosen = attack
    adaptive = info.card.get("adaptive_attack") if isinstance(info.card, Mapping) else None
    if chosen is None and isinstance(adaptive, Mapping) and adaptive.get("attack") in valid:
        # A defended opponent is attacked by the attack that adapts to its defense (its card says which), so the
        # game never shows a defense as stronger than it is.
        overrides = ImageJob.freeze_params(adaptive.get("params") or {})
        plan = RoundPlan(opponent=name, attack=str(adaptive["attack"]), steps=default.steps, overrides=overrides)
        return condition_plan(source, plan, mix)
    if chosen is None:
        fallbacks = (default.attack, *GRADIENT_FREE_DEFAULTS)
        chosen = next((candidate for candidate in fallbacks if candidate in valid), valid[0] if valid else "")
    if chosen not in valid:
        raise Invalid(messages.ROUND_ATTACK_UNKNOWN.format(name=chosen, opponent=name, valid=", ".join(valid)))
    # A transfer round must be crafted on another model, or it would be white-box against this one.
    surrogate = transfer_surrogate(source, name) if chosen == "transfer" else None
    if chosen == "transfer" and surrogate is None:
        raise Invalid(messages.ROUND_NO_SURROGATE.format(opponent=name))
    plan = RoundPlan(
        opponent=name, attack=chosen, steps=default.steps, surrogate=surrogate, early_stop=default.early_stop
    )
    return condition_plan(source, plan, mix)


def condition_plan(source: OpponentSource, plan: RoundPlan, mix: Mapping[str, float] | None) -> RoundPlan:
    """Draw the round's condition from the mix. A transfer draw needs the transfer attack; a server without it
    plays the round adversarial rather than fail."""
    condition = conditions.draw(mix) if mix else "adversarial"
    surrogate = None
    if condition == "transfer":
        surrogate = transfer_surrogate(source, plan.opponent)
        if surrogate is None or "transfer" not in {a["name"] for a in source.attack_catalog()}:
            condition = "adversarial"
    return plan.with_condition(condition, surrogate) if condition != plan.condition else plan


def round_budget(norm: str, eps: float, info: OpponentInfo) -> float:
    """The attack's budget for a staircase step. The staircase speaks L∞ (grey levels per pixel); an L2 attack gets
    the L2 size of an L∞ change of eps on a quarter of the pixels (eps·√(pixels)/2, e.g. 1.41 for 0.1 on 28×28),
    and an L0 attack may change its few pixels all the way (eps 1)."""
    if norm == "l2":
        return round(eps * math.sqrt(max(info.pixel_count, 1)) / 2, 4)
    if norm == "l0":
        return 1.0
    return eps


def staircase_for(info: OpponentInfo) -> Staircase:
    return Staircase.from_min_eps(info.min_eps)


def new_job(plan: RoundPlan, info: OpponentInfo, eps: float) -> ImageJob:
    """One image job for a plan: a random test image the opponent gets right when clean, and a fresh seed."""
    job = ImageJob(
        opponent=plan.opponent,
        attack=plan.attack,
        params=ImageJob.freeze_params(plan.attack_params()),
        image_index=-1,
        eps=eps,
        seed=0,
        condition=plan.condition,
    )
    return with_fresh_image(job, info)


def with_fresh_image(job: ImageJob, info: OpponentInfo) -> ImageJob:
    """The job on a random test image the opponent gets right when clean, with a fresh seed."""
    return dataclasses.replace(job, image_index=secrets.choice(info.eligible_indices), seed=secrets.randbits(62))


def plan_columns(plan: RoundPlan, attack: Mapping[str, Any], eps: float) -> dict[str, Any]:
    """The columns that say how a round (or shared image) was made: opponent, attack, its parameters and budget."""
    params = plan.attack_params()
    surrogate = params.get("surrogate")
    if attack["threat_model"] == "transfer" and surrogate is None:
        surrogate = next((p["default"] for p in attack.get("params", []) if p["name"] == "surrogate"), None)
    return {
        "opponent": plan.opponent,
        "attack": plan.attack,
        "attack_params": params,
        "eps": eps,
        "norm": attack["norm"],
        "surrogate": surrogate,
        "condition": plan.condition,
    }

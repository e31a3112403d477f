"""JSON shapes of the public API (/api/v1)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PlayerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # The documented rule, checked by app.game.players (its message says why), after stripping the ends' spaces
    nickname: str = Field(
        max_length=200,
        description="1 to 24 printable characters (spaces at the ends are dropped)",
        json_schema_extra={"minLength": 1, "maxLength": 24, "pattern": "^[!-~]([ -~]{0,22}[!-~])?$"},
    )
    event_code: str | None = Field(None, max_length=20, description="Join this workshop event (its 6-character code)")


class PlayerCreated(BaseModel):
    player_id: str
    nickname: str
    token: str
    event_code: str | None = None


class RoundCreate(BaseModel):
    """Both optional: the server's default opponent, and its default attack (or, against an opponent without
    gradients, a gradient-free one). Unknown names are refused with the valid ones listed."""

    model_config = ConfigDict(extra="forbid")
    opponent: str | None = Field(None, max_length=60, description="An opponent from GET /api/v1/opponents")
    attack: str | None = Field(None, max_length=40, description="An attack from GET /api/v1/attacks")
    task: Literal["classify", "guess_machine"] = Field(
        "classify", description="classify: say what it shows; guess_machine: pick which of two labels the machine gave"
    )


class RoundCreated(BaseModel):
    """Deliberately nothing about the answer: no label, no model output, no image index."""

    round_id: str
    task: str = Field("classify", description="classify, or guess_machine (choices: the machine's answer and a foil)")
    flash_ms: int | None = Field(None, description="Flash mode: show the image this long, then mask it")
    image_url: str
    choices: list[str]
    opponent: str
    attack: str
    norm: str = Field(description="linf, l2 or l0: what eps measures")
    eps: float
    eps_text: str
    answer_url: str


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    choice: str = Field(max_length=100)
    shown_ms: float | None = Field(
        None, ge=0, le=600_000, description="Flash mode: how long the image was on screen, as the client measured it"
    )


class Confidence(BaseModel):
    label: str
    probability: float


class RevealOut(BaseModel):
    """What every reveal says, image or text: the player's answer, the truth, the machine's answer, the points.
    Only its subclasses are sent; the OpenAPI schema lists each with these fields first."""

    round_id: str
    correct: bool
    choice: str
    true_label: str
    model_label: str
    model_confidence: float
    model_correct: bool
    model_top3: list[Confidence]
    clean_model_label: str
    beat_machine: bool
    points: int
    score: int
    streak: int


class AnswerOut(RevealOut):
    eps: float
    eps_text: str
    response_ms: int
    opponent: str
    attack: str
    threat_model: str
    norm: str
    attack_explanation: str
    queries: int | None = Field(None, description="Model queries the attack used (black-box attacks only)")
    query_budget: int | None = Field(None, description="Model queries the attack was allowed")
    surrogate: str | None = Field(None, description="Transfer rounds: the model the attack was crafted on")
    condition: str = Field("adversarial", description="adversarial, clean, noise, flipped or transfer (science mode)")
    task: str = Field(
        "classify", description="classify, or guess_machine: then `correct` means naming the machine's answer"
    )
    flash_ms: int | None = Field(None, description="Flash mode: how long the image was meant to show")
    shown_ms: float | None = Field(None, description="Flash mode: how long the client measured it on screen")
    timing_flagged: bool | None = Field(None, description="Flash mode: measurement missing or off by over a frame")
    defense_verdict: str | None = Field(
        None,
        description="Defended opponents: rejected (detector), reformed (the input transform saved it), certified "
        "(change within the proven radius), withstood or fooled; null for undefended opponents",
    )
    defense_text: str = Field("", description="The reveal's sentence for defense_verdict")
    certified_radius: float | None = Field(
        None, description="Certified opponents: the L∞ radius proven around the clean image (pixel units, 0-1)"
    )
    linf: float
    l2: float | None
    original_url: str
    adversarial_url: str
    perturbation_url: str


class AnswerLocked(BaseModel):
    """The acknowledgement of an answer to a together image that is still counting down: stored, scored, but
    revealed (at ``reveal_url``) only once the countdown is over."""

    round_id: str
    choice: str
    locked: bool = True
    reveal_at: str
    reveal_url: str


class AttackParam(BaseModel):
    model_config = ConfigDict(extra="allow")  # min/max/min_exclusive/choices appear where they apply
    name: str
    type: str
    nullable: bool
    default: object
    description: str


class AttackInfo(BaseModel):
    name: str
    threat_model: str
    norm: str
    targeted: bool
    budget: str
    explanation: str
    params: list[AttackParam]
    playable_in_rounds: bool
    playable_against: list[str] = Field(description="The loaded opponents a round with this attack can face")


class OpponentOut(BaseModel):
    name: str
    pack: str
    description: str
    architecture: str
    differentiable: bool
    clean_accuracy: float
    min_eps: float
    default: bool
    attacks: list[str] = Field(description="Attacks a round can use against it")
    card: dict[str, object] = Field(description="The model card: data, training command, seed, robustness")


class LeaderboardEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built straight from app.stats.leaderboard's rows

    rank: int
    player_id: str
    nickname: str
    score: int
    rounds: int
    correct: int
    accuracy: float
    beat_machine: int
    best_streak: int


class TallyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built straight from app.stats.leaderboard's Tally

    answers: int
    human_accuracy: float
    model_accuracy: float
    beat_machine: int


class Problem(BaseModel):
    detail: str


# -- workshop events ----------------------------------------------------------------------------------------------


class PhaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opponent: str = Field(max_length=60)
    attack: str = Field(max_length=40)


class EventCreate(BaseModel):
    """An event's settings. Give ``eps`` for a fixed budget or ``eps_min``/``eps_max`` for a range (pixel units,
    rounded to whole grey levels); give ``rounds`` or ``time_limit_s`` or neither (the host ends it)."""

    model_config = ConfigDict(extra="forbid")
    # The documented rules, checked by app.game.events.settings (its messages say why): the spec states them too.
    name: str = Field(
        max_length=200,
        description="1 to 80 printable characters (spaces at the ends are dropped)",
        json_schema_extra={"minLength": 1, "maxLength": 80, "pattern": r"^\S(.{0,78}\S)?$"},
    )
    pack: str | None = Field(None, max_length=40, description="Data pack; defaults to the first opponent's")
    phases: list[PhaseIn] | None = Field(
        None,
        max_length=10,
        description="Opponent and attack per phase; the host switches with next-phase",
        json_schema_extra={"minItems": 1},
    )
    opponent: str | None = Field(None, max_length=60, description="Shortcut for a single phase")
    attack: str | None = Field(None, max_length=40, description="Shortcut for a single phase")
    eps: float | None = None
    eps_min: float | None = None
    eps_max: float | None = None
    style: str = Field("own_pace", max_length=20, description="own_pace or together")
    rounds: int | None = Field(None, description="Rounds per player (own pace) or images in all (together)")
    time_limit_s: int | None = None
    round_seconds: int = Field(20, description="Countdown of a together image")
    flash_ms: int | None = Field(
        None, description="Flash mode: show each image this many ms (20-2000), then a mask, then the choices"
    )
    guess_share: float | None = Field(
        None, description="Share (0-1) of own-pace rounds that ask which of two labels the machine gave"
    )
    conditions: dict[str, float] | str | None = Field(
        None,
        description='Science mode: what rounds show, drawn with these weights, e.g. {"adversarial": 0.6, '
        '"clean": 0.1, "noise": 0.1, "flipped": 0.1, "transfer": 0.1}; default: every round adversarial',
    )
    expected_players: int | None = Field(
        None,
        description="Players expected (0-1000): an own-pace event with a round limit prepares rounds × this many "
        "images ahead, so that its rounds never wait for the model; default 0, every round made on demand",
    )
    mode: Literal["images", "policy"] = Field(
        "images", description="images, or policy: pick the moments on the CartPole agent (own pace only)"
    )
    image_mode: str | None = Field(
        None,
        max_length=10,
        description="fresh (the default): every round a new image; fixed: every player sees the same `rounds` "
        "images, each once, in their own random order (own pace with a round limit)",
    )


class EventCreated(BaseModel):
    code: str
    host_token: str
    join_url: str
    screen_url: str
    host_url: str
    report_url: str


class PhaseOut(BaseModel):
    opponent: str
    attack: str


class SharedRoundOut(BaseModel):
    number: int
    open: bool
    closes_at: str
    eps: float


class EventState(BaseModel):
    code: str
    name: str
    status: str
    locked: bool
    style: str
    phase: int
    phases: list[PhaseOut]
    eps_levels: list[float]
    rounds: int | None
    time_limit_s: int | None
    seconds_left: float | None
    players: int
    shared_round: SharedRoundOut | None
    prepared_images: int = Field(description="Images of the event's stock made so far (served or not)")
    images_to_prepare: int = Field(
        description="The event's stock: rounds × expected players, or a fixed set's rounds images (0: none)"
    )
    image_mode: str = Field("fresh", description="fresh, or fixed: every player sees the same set of images")


class ProportionOut(BaseModel):
    correct: int
    n: int
    accuracy: float
    ci95: tuple[float, float]


class EpsStats(BaseModel):
    eps: float
    eps_text: str
    human: ProportionOut
    model: ProportionOut


class ItemAgreementOut(BaseModel):
    item_id: int = Field(description="The item of the event's fixed set (as item_id in the exports)")
    true_label: int
    human: ProportionOut = Field(description="People who named the truth on this item, with its Wilson interval")
    modal_answer: int = Field(description="The answer most people gave")
    modal_share: float
    pairwise_agreement: float | None = Field(description="Share of agreeing pairs of people; null under two answers")


class AgreementOut(BaseModel):
    """Agreement between people per image of a fixed set (app/stats/agreement.py)."""

    items: list[ItemAgreementOut]
    pairwise_agreement: float | None
    pairwise_agreement_ci95: tuple[float, float] | None = Field(description="Percentile bootstrap over items")
    fleiss_kappa: float | None = Field(description="Agreement beyond chance (Fleiss 1971); null when undefined")
    fleiss_kappa_ci95: tuple[float, float] | None = Field(description="Percentile bootstrap over items")


class EventStats(BaseModel):
    code: str
    status: str
    players: int
    answers: int
    human: ProportionOut
    model: ProportionOut
    beat_machine: int
    by_eps: list[EpsStats]
    agreement: AgreementOut | None = Field(None, description="Fixed-set events: agreement between people per image")


class EventPlayer(BaseModel):
    player_id: str
    nickname: str
    score: int
    removed: bool


class ThresholdOut(BaseModel):
    """Where the player's accuracy on attacked images falls to ``target_accuracy``, from their staircase
    (mean budget at the reversals), next to the same point for the machine (its card's min_eps)."""

    opponent: str
    rounds: int
    reversals: int
    eps: float | None = Field(description="The player's threshold (pixel units); null until 3 usable reversals")
    eps_text: str | None
    spread: float | None = Field(description="Standard deviation of the reversal budgets")
    model_eps: float
    model_eps_text: str
    target_accuracy: float

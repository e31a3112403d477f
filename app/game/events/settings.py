"""What a host chooses for an event: the host's form validated by a pydantic model (``EventForm``) against what
the server can run (``Catalog``), and the settings stored as JSON on the event (``EventSettings``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

from app import messages
from app.db.tables import EventRecord
from app.errors import Invalid
from app.game import conditions

MAX_PHASES = 5
MAX_EPS_LEVELS = 5
EVENT_NAME_MAX = 80
MAX_EXPECTED_PLAYERS = 1000
DEFAULT_EPS = 4 / 255

Style = Literal["own_pace", "together"]
# What the room plays: images (classify the attacked image) or the policy game (pick the moments, issue 19, own pace).
Mode = Literal["images", "policy"]
# fresh: every round a new image (each stock image served once); fixed: every player sees the same set of images,
# each once, in their own random order (the psychophysics design; app/game/events/fixed_set.py)
ImageMode = Literal["fresh", "fixed"]


def grey(eps: float) -> int:
    return int(round(eps * 255))


class Phase(BaseModel):
    model_config = ConfigDict(frozen=True)

    opponent: str
    attack: str


class EventSettings(BaseModel):
    """What the host chose. Stored as JSON on the event; validated against what the server can actually run."""

    model_config = ConfigDict(frozen=True)

    phases: tuple[Phase, ...]
    eps_min: float
    eps_max: float
    style: Style = "own_pace"
    rounds: int | None = None  # per player (own pace) or images in all (together)
    time_limit_s: int | None = None
    round_seconds: int = 20  # countdown of a together image
    steps: int = 20  # PGD iterations
    early_stop: bool = True  # PGD stops per image once the shown image fools (app/ml/attacks/shown_stop.py)
    # science mode: condition → weight (app/game/conditions.py); None is plain play (every round adversarial)
    conditions: dict[str, float] | None = None
    flash_ms: int | None = None  # flash mode: the image shows this long, then a mask, then the choices
    guess_share: float = 0.0  # share of own-pace rounds that ask for the machine's answer (guess the machine)
    # players the host expects: an own-pace event with a round limit prepares rounds × this many images (stock)
    expected_players: int = 0
    mode: Mode = "images"
    image_mode: ImageMode = "fresh"

    @property
    def fixed_set(self) -> bool:
        return self.image_mode == "fixed"

    @property
    def stock_target(self) -> int:
        """How many images the event prepares ahead (app/game/events/prepare.py): one per round each expected
        player will play; for a fixed set, its ``rounds`` images once, whoever plays; none for together rooms (one
        image serves the room) or events limited by time."""
        if self.style != "own_pace" or self.rounds is None or self.mode != "images":
            return 0
        if self.fixed_set:
            return self.rounds
        return self.rounds * self.expected_players

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventSettings:
        return cls.model_validate(data)

    @property
    def fixed_eps(self) -> bool:
        return grey(self.eps_min) == grey(self.eps_max)

    def eps_levels(self) -> tuple[float, ...]:
        """The budgets rounds use: whole grey levels, at most five evenly spaced ones, so that accuracy by eps
        has enough answers per budget to mean something."""
        low, high = grey(self.eps_min), grey(self.eps_max)
        if low == high:
            return (low / 255.0,)
        count = min(MAX_EPS_LEVELS, high - low + 1)
        levels = sorted({round(low + (high - low) * i / (count - 1)) for i in range(count)})
        return tuple(level / 255.0 for level in levels)


def event_settings(event: EventRecord) -> EventSettings:
    return EventSettings.from_json(event.settings)


@dataclass(frozen=True)
class Catalog:
    """What the server can run: opponents (with their data pack) and attacks. Built lazily by the caller from
    ``app.ml.available_opponents()`` / ``available_attacks()`` so new ones appear without changes here."""

    opponents: Mapping[str, str]  # opponent name → pack name
    attacks: tuple[str, ...]
    # opponent → the attacks that can play against it (gradient-free opponents refuse white-box attacks)
    playable: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def catalog_from(
    opponents: Iterable[str],
    attacks: Iterable[str],
    pack_of: Callable[[str], str],
    playable: Mapping[str, Iterable[str]] | None = None,
) -> Catalog:
    return Catalog(
        opponents={name: pack_of(name) for name in opponents},
        attacks=tuple(sorted(attacks)),
        playable={name: tuple(sorted(names)) for name, names in (playable or {}).items()},
    )


def number(raw: object, *, message: str, integer: bool = False) -> Any:
    """A finite number the host typed or sent: a JSON number or a numeric string, never a boolean."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        if isinstance(raw, str) and raw.strip():
            try:
                raw = float(raw)
            except ValueError:
                raise Invalid(message) from None
        else:
            raise Invalid(message)
    # like pydantic's allow_inf_nan=False: NaN would slip past every range check below
    if not math.isfinite(raw):
        raise Invalid(message)
    if integer:
        if float(raw) != int(raw):
            raise Invalid(message)
        return int(raw)
    return float(raw)


def bounded(raw: object, low: float, high: float, *, message: str, integer: bool = False) -> Any:
    value = number(raw, message=message, integer=integer)
    if not low <= value <= high:
        raise Invalid(message)
    return value


def optional_bounded(raw: object, low: float, high: float, *, message: str, integer: bool = False) -> Any:
    """Like ``bounded``; an empty field (or none) means no limit."""
    return None if raw in ("", None) else bounded(raw, low, high, message=message, integer=integer)


def catalog_of(info: ValidationInfo) -> Catalog:
    catalog: Catalog = info.context["catalog"]
    return catalog


class EventForm(BaseModel):
    """The host's form. Each field is checked in the order declared and the first problem is raised at once as
    ``Invalid`` with a message the host can act on (pydantic passes domain errors through untouched), so the
    message shown is that of the first field at fault. Validate with ``context={"catalog": catalog}``."""

    model_config = ConfigDict(validate_default=True, extra="ignore")

    name: str = None  # type: ignore[assignment]  # every default is validated: a missing name is refused
    phases: tuple[Phase, ...] = None  # type: ignore[assignment]
    pack: str = ""
    eps_min: float
    eps_max: float
    style: Style = "own_pace"
    rounds: int | None = None
    time_limit_s: int | None = None
    round_seconds: int = 20
    flash_ms: int | None = None
    guess_share: float = 0.0
    conditions: dict[str, float] | None = None
    expected_players: int = 0
    mode: Mode = "images"
    image_mode: ImageMode = "fresh"

    @model_validator(mode="before")
    @classmethod
    def one_budget_or_a_range(cls, raw: Any) -> Any:
        data = dict(raw)
        if data.get("eps") is not None:
            data["eps_min"] = data["eps_max"] = data["eps"]
        else:  # a missing budget (or none, as the API sends it) is the default
            if data.get("eps_min") is None:
                data["eps_min"] = DEFAULT_EPS
            if data.get("eps_max") is None:
                data["eps_max"] = data["eps_min"]
        return data

    @field_validator("name", mode="before")
    @classmethod
    def printable_name(cls, raw: object) -> str:
        if not isinstance(raw, str) or not 1 <= len(raw.strip()) <= EVENT_NAME_MAX or not raw.strip().isprintable():
            raise Invalid(messages.EVENT_NAME_INVALID)
        return raw.strip()

    @field_validator("phases", mode="before")
    @classmethod
    def playable_phases(cls, raw: object, info: ValidationInfo) -> tuple[Phase, ...]:
        catalog = catalog_of(info)
        if not isinstance(raw, list | tuple) or not 1 <= len(raw) <= MAX_PHASES:
            raise Invalid(messages.EVENT_PHASES_INVALID)
        phases = []
        for item in raw:
            if not isinstance(item, Mapping):
                raise Invalid(messages.EVENT_PHASES_INVALID)
            opponent, attack = item.get("opponent"), item.get("attack")
            if opponent not in catalog.opponents:
                valid = ", ".join(sorted(catalog.opponents))
                raise Invalid(messages.EVENT_OPPONENT_UNKNOWN.format(name=opponent, valid=valid))
            valid_attacks = catalog.playable.get(str(opponent), catalog.attacks)
            if attack not in valid_attacks:
                raise Invalid(messages.EVENT_ATTACK_UNKNOWN.format(name=attack, valid=", ".join(valid_attacks)))
            phases.append(Phase(opponent=str(opponent), attack=str(attack)))
        return tuple(phases)

    @field_validator("pack", mode="before")
    @classmethod
    def pack_of_every_phase(cls, raw: object, info: ValidationInfo) -> str:
        opponents = catalog_of(info).opponents
        phases: tuple[Phase, ...] = info.data["phases"]
        pack = raw or opponents[phases[0].opponent]
        for phase in phases:
            if opponents[phase.opponent] != pack:
                raise Invalid(
                    messages.EVENT_PACK_MISMATCH.format(
                        name=phase.opponent, pack=opponents[phase.opponent], wanted=pack
                    )
                )
        return str(pack)

    @field_validator("eps_min", mode="before")
    @classmethod
    def lowest_budget(cls, raw: object) -> float:
        return float(number(raw, message=messages.EVENT_EPS_INVALID))

    @field_validator("eps_max", mode="before")
    @classmethod
    def budget_range(cls, raw: object, info: ValidationInfo) -> float:
        eps_min: float = info.data["eps_min"]
        eps_max = float(number(raw, message=messages.EVENT_EPS_INVALID))
        if not (1 <= grey(eps_min) <= grey(eps_max) <= 76):
            raise Invalid(messages.EVENT_EPS_INVALID)
        return eps_max

    @field_validator("style", mode="before")
    @classmethod
    def known_style(cls, raw: object) -> object:
        if raw not in ("own_pace", "together"):
            raise Invalid(messages.EVENT_STYLE_INVALID)
        return raw

    @field_validator("rounds", mode="before")
    @classmethod
    def rounds_limit(cls, raw: object) -> int | None:
        return optional_bounded(raw, 1, 200, message=messages.EVENT_LIMIT_INVALID, integer=True)

    @field_validator("time_limit_s", mode="before")
    @classmethod
    def time_limit_instead_of_rounds(cls, raw: object, info: ValidationInfo) -> int | None:
        limit = optional_bounded(raw, 60, 240 * 60, message=messages.EVENT_LIMIT_INVALID, integer=True)
        if limit is not None and info.data["rounds"] is not None:
            raise Invalid(messages.EVENT_LIMIT_INVALID)
        return limit

    @field_validator("round_seconds", mode="before")
    @classmethod
    def countdown(cls, raw: object) -> int:
        return int(bounded(raw, 5, 120, message=messages.EVENT_ROUND_SECONDS_INVALID, integer=True))

    @field_validator("flash_ms", mode="before")
    @classmethod
    def flash_length(cls, raw: object) -> int | None:
        return optional_bounded(raw, 20, 2000, message=messages.EVENT_FLASH_INVALID, integer=True)

    @field_validator("guess_share", mode="before")
    @classmethod
    def share_of_guesses(cls, raw: object) -> float:
        return float(0.0 if raw in (None, "") else bounded(raw, 0, 1, message=messages.EVENT_GUESS_INVALID))

    @field_validator("conditions", mode="before")
    @classmethod
    def science_mix(cls, raw: Any) -> dict[str, float] | None:
        return None if raw in (None, "", {}) else conditions.parse_mix(raw)

    @field_validator("expected_players", mode="before")
    @classmethod
    def players_to_prepare_for(cls, raw: object) -> int:
        return int(
            0
            if raw in (None, "")
            else bounded(raw, 0, MAX_EXPECTED_PLAYERS, message=messages.EVENT_EXPECTED_PLAYERS_INVALID, integer=True)
        )

    @field_validator("mode", mode="before")
    @classmethod
    def images_or_policy(cls, raw: object, info: ValidationInfo) -> object:
        raw = "images" if raw in (None, "") else raw
        if raw not in ("images", "policy") or (raw == "policy" and info.data.get("style") == "together"):
            raise Invalid(messages.EVENT_MODE_INVALID)
        return raw

    @field_validator("image_mode", mode="before")
    @classmethod
    def fresh_or_a_fixed_set(cls, raw: object, info: ValidationInfo) -> object:
        mode = "fresh" if raw in (None, "") else raw
        if mode not in ("fresh", "fixed"):
            raise Invalid(messages.EVENT_IMAGE_MODE_INVALID)
        if mode == "fixed" and (info.data["style"] != "own_pace" or info.data["rounds"] is None):
            raise Invalid(messages.EVENT_IMAGE_MODE_INVALID)
        return mode

    def settings(self) -> EventSettings:
        return EventSettings(
            phases=self.phases,
            eps_min=grey(self.eps_min) / 255.0,
            eps_max=grey(self.eps_max) / 255.0,
            style=self.style,
            rounds=self.rounds,
            time_limit_s=self.time_limit_s,
            round_seconds=self.round_seconds,
            conditions=self.conditions,
            flash_ms=self.flash_ms,
            guess_share=self.guess_share,
            expected_players=self.expected_players,
            mode=self.mode,
            image_mode=self.image_mode,
        )


def validate_settings(raw: Mapping[str, Any], *, catalog: Catalog) -> tuple[str, str, EventSettings]:
    """Turn what the host sent into (name, pack, settings), or raise Invalid with a message the host can act on.

    ``raw`` keys: name, pack, phases ([{opponent, attack}]), eps (fixed) or eps_min/eps_max, style, rounds,
    time_limit_s, round_seconds, conditions (a science-mode mix, "adversarial=0.7,clean=0.1,..." or a mapping),
    expected_players (how many players to prepare images for), mode (images, or policy: pick the moments),
    image_mode (fresh, or fixed: one set for all)."""
    form = EventForm.model_validate(raw, context={"catalog": catalog})
    return form.name, form.pack, form.settings()

"""Workshop events: a host runs a live session for a room. Settings, join codes, host secrets, the event's
life cycle (lobby → running ⇄ paused → ended), joining, event rounds (own pace or "together") and the checks an
answer must pass. Plain Python: no HTTP, no torch; the model service and the ML catalogue are passed in.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import messages
from app.db.tables import (
    AnswerRecord,
    EventRecord,
    PlayerRecord,
    RoundRecord,
    SharedRoundRecord,
    attacked_image_columns,
)
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.game import conditions, rounds
from app.game.players import create_player, validate_nickname

# No 0/O, 1/I/L: a code read off a projector is typed right the first time.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
MAX_PHASES = 5
MAX_EPS_LEVELS = 5
ANSWER_GRACE_S = 1.0  # a together answer sent as the countdown hits zero still counts
EVENT_NAME_MAX = 80

Style = Literal["own_pace", "together"]
Status = Literal["lobby", "running", "paused", "ended"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time this app stores is UTC.
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- settings -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    opponent: str
    attack: str


@dataclass(frozen=True)
class EventSettings:
    """What the host chose. Stored as JSON on the event; validated against what the server can actually run."""

    phases: tuple[Phase, ...]
    eps_min: float
    eps_max: float
    style: Style = "own_pace"
    rounds: int | None = None  # per player (own pace) or images in all (together)
    time_limit_s: int | None = None
    round_seconds: int = 20  # countdown of a together image
    steps: int = 20  # PGD iterations
    # science mode: condition → weight (app/game/conditions.py); None is plain play (every round adversarial)
    conditions: dict[str, float] | None = None
    flash_ms: int | None = None  # flash mode: the image shows this long, then a mask, then the choices
    guess_share: float = 0.0  # share of own-pace rounds that ask for the machine's answer (guess the machine)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["phases"] = [asdict(p) for p in self.phases]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventSettings:
        values = dict(data)
        values["phases"] = tuple(Phase(**p) for p in data["phases"])
        return cls(**values)

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


def grey(eps: float) -> int:
    return int(round(eps * 255))


@dataclass(frozen=True)
class Catalog:
    """What the server can run: opponents (with their data pack) and attacks. Built lazily by the caller from
    ``app.ml.available_opponents()`` / ``available_attacks()`` so new ones appear without changes here."""

    opponents: Mapping[str, str]  # opponent name → pack name
    attacks: tuple[str, ...]
    # opponent → the attacks that can play against it (gradient-free opponents refuse white-box attacks)
    playable: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _number(raw: object, *, message: str, integer: bool = False) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        if isinstance(raw, str) and raw.strip():
            try:
                raw = float(raw)
            except ValueError:
                raise Invalid(message) from None
        else:
            raise Invalid(message)
    if integer:
        if float(raw) != int(raw):
            raise Invalid(message)
        return int(raw)
    return float(raw)


def validate_settings(raw: Mapping[str, Any], *, catalog: Catalog) -> tuple[str, str, EventSettings]:
    """Turn what the host sent into (name, pack, settings), or raise Invalid with a message the host can act on.

    ``raw`` keys: name, pack, phases ([{opponent, attack}]), eps (fixed) or eps_min/eps_max, style, rounds,
    time_limit_s, round_seconds, conditions (a science-mode mix, "adversarial=0.7,clean=0.1,..." or a mapping)."""
    name = raw.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= EVENT_NAME_MAX or not name.strip().isprintable():
        raise Invalid(messages.EVENT_NAME_INVALID)
    name = name.strip()

    raw_phases = raw.get("phases")
    if not isinstance(raw_phases, list | tuple) or not 1 <= len(raw_phases) <= MAX_PHASES:
        raise Invalid(messages.EVENT_PHASES_INVALID)
    phases = []
    for item in raw_phases:
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

    pack = raw.get("pack") or catalog.opponents[phases[0].opponent]
    for phase in phases:
        if catalog.opponents[phase.opponent] != pack:
            raise Invalid(
                messages.EVENT_PACK_MISMATCH.format(
                    name=phase.opponent, pack=catalog.opponents[phase.opponent], wanted=pack
                )
            )

    if raw.get("eps") is not None:
        eps_min = eps_max = _number(raw["eps"], message=messages.EVENT_EPS_INVALID)
    else:
        eps_min = _number(raw.get("eps_min", 4 / 255), message=messages.EVENT_EPS_INVALID)
        eps_max = _number(raw.get("eps_max", eps_min), message=messages.EVENT_EPS_INVALID)
    if not (1 <= grey(eps_min) <= grey(eps_max) <= 76):
        raise Invalid(messages.EVENT_EPS_INVALID)

    style = raw.get("style", "own_pace")
    if style not in ("own_pace", "together"):
        raise Invalid(messages.EVENT_STYLE_INVALID)

    rounds_limit = raw.get("rounds")
    time_limit = raw.get("time_limit_s")
    if rounds_limit in ("", None):
        rounds_limit = None
    else:
        rounds_limit = _number(rounds_limit, message=messages.EVENT_LIMIT_INVALID, integer=True)
        if not 1 <= rounds_limit <= 200:
            raise Invalid(messages.EVENT_LIMIT_INVALID)
    if time_limit in ("", None):
        time_limit = None
    else:
        time_limit = _number(time_limit, message=messages.EVENT_LIMIT_INVALID, integer=True)
        if not 60 <= time_limit <= 240 * 60:
            raise Invalid(messages.EVENT_LIMIT_INVALID)
    if rounds_limit is not None and time_limit is not None:
        raise Invalid(messages.EVENT_LIMIT_INVALID)

    round_seconds = _number(raw.get("round_seconds", 20), message=messages.EVENT_ROUND_SECONDS_INVALID, integer=True)
    if not 5 <= round_seconds <= 120:
        raise Invalid(messages.EVENT_ROUND_SECONDS_INVALID)

    flash = raw.get("flash_ms")
    flash_ms = None if flash in (None, "") else _number(flash, message=messages.EVENT_FLASH_INVALID, integer=True)
    if flash_ms is not None and not 20 <= flash_ms <= 2000:
        raise Invalid(messages.EVENT_FLASH_INVALID)
    guess = raw.get("guess_share")
    guess_share = 0.0 if guess in (None, "") else _number(guess, message=messages.EVENT_GUESS_INVALID)
    if not 0 <= guess_share <= 1:
        raise Invalid(messages.EVENT_GUESS_INVALID)
    mix = raw.get("conditions")
    conditions_mix = None if mix in (None, "", {}) else conditions.parse_mix(mix)

    settings = EventSettings(
        conditions=conditions_mix,
        flash_ms=flash_ms,
        guess_share=guess_share,
        phases=tuple(phases),
        eps_min=grey(eps_min) / 255.0,
        eps_max=grey(eps_max) / 255.0,
        style=style,
        rounds=rounds_limit,
        time_limit_s=time_limit,
        round_seconds=round_seconds,
    )
    return name, str(pack), settings


def event_settings(event: EventRecord) -> EventSettings:
    return EventSettings.from_json(event.settings)


# -- codes and host secrets -----------------------------------------------------------------------------------


def new_join_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(raw: str) -> str:
    """What people type: lower case, spaces, a dash in the middle. Anything that cannot be a code is unknown."""
    code = "".join(raw.split()).replace("-", "").upper()
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        raise NotFound(messages.EVENT_NOT_FOUND)
    return code


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_event(
    session: AsyncSession, *, name: str, pack: str, settings: EventSettings
) -> tuple[EventRecord, str]:
    """Store a new event in the lobby. Returns it with the host token, which is shown once and stored hashed."""
    host_token = secrets.token_urlsafe(32)
    for _attempt in range(10):
        code = new_join_code()
        taken = await session.scalar(select(EventRecord.id).where(EventRecord.code == code))
        if taken is None:
            break
    else:  # 31**6 codes: ten collisions in a row means something else is wrong
        raise RuntimeError("could not find a free join code")
    event = EventRecord(
        id=uuid.uuid4().hex,
        code=code,
        name=name,
        host_token_hash=hash_secret(host_token),
        created_at=utcnow(),
        pack=pack,
        settings=settings.to_json(),
        status="lobby",
        locked=False,
        phase=0,
        shared_rounds=0,
    )
    session.add(event)
    await session.flush()
    return event, host_token


async def event_by_code(session: AsyncSession, raw_code: str, *, for_update: bool = False) -> EventRecord:
    code = normalise_code(raw_code)
    query = select(EventRecord).where(EventRecord.code == code)
    if for_update:
        query = query.with_for_update()
    event = await session.scalar(query)
    if event is None:
        raise NotFound(messages.EVENT_NOT_FOUND)
    return event


def check_host(event: EventRecord, token: str | None) -> None:
    """The host token, compared in constant time against the stored hash. No token and a wrong token are both
    403, with different messages so a host who forgot the header knows what to send."""
    if not token:
        raise Forbidden(messages.HOST_TOKEN_REQUIRED)
    if not secrets.compare_digest(hash_secret(token), event.host_token_hash):
        raise Forbidden(messages.HOST_TOKEN_INVALID)


# -- life cycle ----------------------------------------------------------------------------------------------


def status_of(event: EventRecord, now: datetime | None = None) -> Status:
    """The status as players see it: a running event whose time limit has passed has ended, even before anyone
    writes that down."""
    now = now or utcnow()
    ends_at = aware(event.ends_at)
    if event.status == "running" and ends_at is not None and now >= ends_at:
        return "ended"
    status: Status = event.status  # type: ignore[assignment]
    return status


def seconds_left(event: EventRecord, now: datetime | None = None) -> float | None:
    now = now or utcnow()
    if event.status == "paused":
        return event.remaining_s
    ends_at = aware(event.ends_at)
    if ends_at is None or status_of(event, now) != "running":
        return None
    return max(0.0, (ends_at - now).total_seconds())


def current_phase(event: EventRecord) -> Phase:
    phases = event_settings(event).phases
    return phases[min(event.phase, len(phases) - 1)]


def _refuse_if_ended(event: EventRecord, now: datetime) -> None:
    if status_of(event, now) == "ended":
        raise Conflict(messages.EVENT_ENDED)


def start(event: EventRecord, now: datetime | None = None) -> None:
    """Start from the lobby, or resume after a pause (the time limit, if any, resumes where it stopped)."""
    now = now or utcnow()
    _refuse_if_ended(event, now)
    if event.status == "running":
        raise Conflict(messages.EVENT_ALREADY_STARTED)
    limit = event_settings(event).time_limit_s
    if event.status == "lobby":
        event.started_at = now
        if limit is not None:
            event.ends_at = now + timedelta(seconds=limit)
    elif event.remaining_s is not None:
        event.ends_at = now + timedelta(seconds=event.remaining_s)
    event.remaining_s = None
    event.status = "running"


def pause(event: EventRecord, now: datetime | None = None) -> None:
    now = now or utcnow()
    _refuse_if_ended(event, now)
    if event.status != "running":
        raise Conflict(messages.EVENT_NOT_RUNNING)
    ends_at = aware(event.ends_at)
    if ends_at is not None:
        event.remaining_s = max(0.0, (ends_at - now).total_seconds())
        event.ends_at = None
    event.status = "paused"


def set_locked(event: EventRecord, locked: bool, now: datetime | None = None) -> None:
    _refuse_if_ended(event, now or utcnow())
    event.locked = locked


def next_phase(event: EventRecord, now: datetime | None = None) -> Phase:
    _refuse_if_ended(event, now or utcnow())
    if event.phase + 1 >= len(event_settings(event).phases):
        raise Conflict(messages.EVENT_LAST_PHASE)
    event.phase += 1
    return current_phase(event)


def end(event: EventRecord, now: datetime | None = None) -> None:
    """Ending is idempotent: a host pressing End twice, or after the time ran out, gets the same ended event."""
    now = now or utcnow()
    if event.status != "ended":
        ends_at = aware(event.ends_at)
        event.ended_at = ends_at if ends_at is not None and ends_at <= now else now
        event.status = "ended"
        event.remaining_s = None


async def remove_player(session: AsyncSession, *, event: EventRecord, player_id: str) -> PlayerRecord:
    player = await session.get(PlayerRecord, player_id)
    if player is None or player.event_id != event.id:
        raise NotFound(messages.PLAYER_NOT_IN_EVENT)
    player.removed = True
    await session.flush()
    return player


# -- players ---------------------------------------------------------------------------------------------------


async def join(session: AsyncSession, *, event: EventRecord, nickname: str) -> tuple[PlayerRecord, str]:
    """A new player in the event. Late joiners are welcome until the host locks joining or the event ends."""
    if status_of(event) == "ended":
        raise Conflict(messages.EVENT_ENDED)
    if event.locked:
        raise Conflict(messages.EVENT_LOCKED)
    nickname = validate_nickname(nickname)
    key = nickname.casefold()[:24]
    taken = await session.scalar(
        select(PlayerRecord.id).where(PlayerRecord.event_id == event.id, PlayerRecord.nickname_key == key)
    )
    if taken is not None:
        raise Conflict(messages.NICKNAME_TAKEN)
    try:
        async with session.begin_nested():  # two phones racing for one nickname: the unique constraint decides
            player, token = await create_player(session, nickname=nickname)
            player.event_id = event.id
            player.nickname_key = key
            await session.flush()
    except IntegrityError:
        raise Conflict(messages.NICKNAME_TAKEN) from None
    return player, token


def check_player_active(player: PlayerRecord) -> None:
    if player.removed:
        raise Forbidden(messages.PLAYER_REMOVED)


async def event_players(session: AsyncSession, event: EventRecord) -> list[PlayerRecord]:
    result = await session.scalars(
        select(PlayerRecord).where(PlayerRecord.event_id == event.id).order_by(PlayerRecord.created_at)
    )
    return list(result)


# -- rounds ----------------------------------------------------------------------------------------------------


def _require_running(event: EventRecord, now: datetime) -> None:
    status = status_of(event, now)
    if status == "ended":
        raise Conflict(messages.EVENT_ENDED)
    if status == "lobby":
        raise Conflict(messages.EVENT_NOT_STARTED)
    if status == "paused":
        raise Conflict(messages.EVENT_PAUSED)


async def open_round(session: AsyncSession, player: PlayerRecord) -> RoundRecord | None:
    """The player's latest unanswered round in their event, if any."""
    return await session.scalar(
        select(RoundRecord)
        .outerjoin(AnswerRecord, AnswerRecord.round_id == RoundRecord.id)
        .where(RoundRecord.player_id == player.id, AnswerRecord.id.is_(None))
        .order_by(RoundRecord.created_at.desc())
        .limit(1)
    )


async def current_shared_round(session: AsyncSession, event: EventRecord) -> SharedRoundRecord | None:
    return await session.scalar(
        select(SharedRoundRecord)
        .where(SharedRoundRecord.event_id == event.id)
        .order_by(SharedRoundRecord.number.desc())
        .limit(1)
    )


def shared_is_open(shared: SharedRoundRecord | None, now: datetime | None = None) -> bool:
    return shared is not None and open_until(shared.closes_at, now)


def open_until(closes_at: datetime | None, now: datetime | None = None) -> bool:
    """Still open, truth still hidden: until the countdown *and* the grace for late answers are over, so nobody can
    read the truth off the big screen and still get an answer in."""
    moment = aware(closes_at)
    return moment is not None and (now or utcnow()) < moment + timedelta(seconds=ANSWER_GRACE_S)


async def next_round(
    session: AsyncSession,
    *,
    player: PlayerRecord,
    event: EventRecord,
    source: rounds.ImageSource,
    release_connection: bool = False,
) -> RoundRecord:
    """The round an event player gets when they ask for one: their unanswered round again if there is one,
    otherwise a new one by the event's rules (own pace) or their copy of the room's current image (together)."""
    check_player_active(player)
    now = utcnow()
    _require_running(event, now)
    settings = event_settings(event)
    if settings.style == "together":
        shared = await current_shared_round(session, event)
        if not shared_is_open(shared, now) or shared is None:
            raise Conflict(messages.EVENT_WAIT_NEXT_IMAGE)
        copy = await copy_for_player(session, shared=shared, player=player)
        if await rounds.round_answer(session, copy.id) is not None:
            raise Conflict(messages.EVENT_WAIT_NEXT_IMAGE)
        return copy
    pending = await open_round(session, player)
    if pending is not None:
        return pending
    if settings.rounds is not None:
        played = await session.scalar(select(func.count(RoundRecord.id)).where(RoundRecord.player_id == player.id))
        if (played or 0) >= settings.rounds:
            raise Conflict(messages.EVENT_ROUNDS_DONE)
    phase = current_phase(event)
    plan = rounds.RoundPlan(opponent=phase.opponent, attack=phase.attack, steps=settings.steps)
    plan = rounds.condition_plan(source, plan, settings.conditions)
    eps = secrets.choice(settings.eps_levels())
    record = await rounds.start_round(
        session,
        player=player,
        source=source,
        plan=plan,
        eps=eps,
        event_id=event.id,
        phase=event.phase,
        release_connection=release_connection,
        flash_ms=settings.flash_ms,
        task=rounds.draw_task(settings.guess_share),
    )
    if release_connection:
        await session.refresh(event)  # releasing the connection expired the event
    return record


async def open_shared_round(
    session: AsyncSession, *, event: EventRecord, source: rounds.ImageSource
) -> SharedRoundRecord:
    """The host shows the room the next image: attacked ONCE, then copied to each player who asks for it."""
    now = utcnow()
    settings = event_settings(event)
    _refuse_if_ended(event, now)
    if settings.style != "together":
        raise Conflict(messages.EVENT_NOT_TOGETHER)
    _require_running(event, now)
    current = await current_shared_round(session, event)
    if shared_is_open(current, now):
        raise Conflict(messages.EVENT_SHARED_OPEN)
    if settings.rounds is not None and event.shared_rounds >= settings.rounds:
        raise Conflict(messages.EVENT_ALL_SHARED_DONE)
    phase = current_phase(event)
    info = source.opponent_info(phase.opponent)
    plan = rounds.RoundPlan(opponent=phase.opponent, attack=phase.attack, steps=settings.steps)
    plan = rounds.condition_plan(source, plan, settings.conditions)  # one condition for the whole room's image
    levels = settings.eps_levels()
    eps = levels[event.shared_rounds % len(levels)]  # cycle through the budgets so each gets its share
    attack = rounds.attack_entry(source, plan.attack)
    budget = rounds.round_budget(attack["norm"], eps, info)
    job = rounds.new_job(plan, info, budget)
    image = await source.generate(job)
    opened = utcnow()  # the countdown starts when the image exists, not when the host clicked
    event.shared_rounds += 1
    shared = SharedRoundRecord(
        id=uuid.uuid4().hex,
        event_id=event.id,
        number=event.shared_rounds,
        phase=event.phase,
        opens_at=opened,
        closes_at=opened + timedelta(seconds=settings.round_seconds),
        pack=info.pack,
        flash_ms=settings.flash_ms,
        **rounds.plan_columns(plan, attack, budget),
        **rounds.image_columns(image),
    )
    session.add(shared)
    await session.flush()
    return shared


async def copy_for_player(session: AsyncSession, *, shared: SharedRoundRecord, player: PlayerRecord) -> RoundRecord:
    """The player's own round on the shared image (same pixels, same model answer); made once per player."""
    existing = await session.scalar(
        select(RoundRecord).where(RoundRecord.player_id == player.id, RoundRecord.shared_round_id == shared.id)
    )
    if existing is not None:
        return existing
    record = RoundRecord(
        id=rounds.new_round_id(),
        player_id=player.id,
        event_id=shared.event_id,
        phase=shared.phase,
        shared_round_id=shared.id,
        created_at=utcnow(),
        level=0,
        **attacked_image_columns(shared),
    )
    try:
        async with session.begin_nested():
            session.add(record)
            await session.flush()
    except IntegrityError:  # the same player's other tab got there first
        existing = await session.scalar(
            select(RoundRecord).where(RoundRecord.player_id == player.id, RoundRecord.shared_round_id == shared.id)
        )
        if existing is None:
            raise
        return existing
    return record


async def answer_round(
    session: AsyncSession,
    *,
    player: PlayerRecord,
    round_id: str,
    choice: str,
    source: rounds.ImageSource,
    shown_ms: float | None = None,
) -> tuple[RoundRecord, AnswerRecord, EventRecord | None]:
    """Answer any round. An event round is refused once the event has ended, when the player was removed, or
    when a together image's countdown is over; everything else is the ordinary game's rule."""
    record = await rounds.player_round(session, player=player, round_id=round_id)
    event: EventRecord | None = None
    if record.event_id is not None:
        check_player_active(player)
        event = await session.get(EventRecord, record.event_id)
        now = utcnow()
        if event is None or status_of(event, now) == "ended":
            raise Conflict(messages.EVENT_ENDED)
        if record.shared_round_id is not None:
            shared = await session.get(SharedRoundRecord, record.shared_round_id)
            closes_at = aware(shared.closes_at) if shared is not None else None
            if closes_at is None or now > closes_at + timedelta(seconds=ANSWER_GRACE_S):
                raise Conflict(messages.EVENT_TIME_UP)
    record, answer = await rounds.answer_round(
        session, player=player, round_id=round_id, choice=choice, source=source, shown_ms=shown_ms
    )
    return record, answer, event


async def event_of_player(session: AsyncSession, player: PlayerRecord) -> EventRecord | None:
    if player.event_id is None:
        return None
    return await session.get(EventRecord, player.event_id)


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


HOST_ACTIONS = ("start", "resume", "pause", "lock", "unlock", "next-phase", "next-image", "end")


async def host_action(session: AsyncSession, *, event: EventRecord, action: str, source: rounds.ImageSource) -> None:
    """Apply one host control. The caller has checked the host token."""
    if action in ("start", "resume"):
        start(event)
    elif action == "pause":
        pause(event)
    elif action == "lock":
        set_locked(event, True)
    elif action == "unlock":
        set_locked(event, False)
    elif action == "next-phase":
        next_phase(event)
    elif action == "next-image":
        await open_shared_round(session, event=event, source=source)
    elif action == "end":
        end(event)
    else:
        raise NotFound(messages.EVENT_ACTION_UNKNOWN)
    await session.flush()


async def player_count(session: AsyncSession, event: EventRecord) -> int:
    count = await session.scalar(
        select(func.count(PlayerRecord.id)).where(PlayerRecord.event_id == event.id, PlayerRecord.removed.is_(False))
    )
    return int(count or 0)


async def truth_hidden_until(session: AsyncSession, record: RoundRecord) -> datetime | None:
    """When a round belongs to a together image that is still counting down, the moment its truth may be shown;
    None when it may be shown now. Until then an answer is only acknowledged: its reveal, the original and the
    perturbation stay hidden, so nobody who has answered can tell the room."""
    if record.shared_round_id is None:
        return None
    shared = await session.get(SharedRoundRecord, record.shared_round_id)
    if shared is None or not shared_is_open(shared):
        return None
    closes_at = aware(shared.closes_at)
    return None if closes_at is None else closes_at + timedelta(seconds=ANSWER_GRACE_S)

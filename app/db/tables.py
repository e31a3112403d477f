"""Database tables. In this project a *model* is a classifier, so these are called tables and records."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Explicit constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """128 random bits as 32 hex digits: an id nobody can guess or enumerate, which fits every id column and never
    starts with a character a spreadsheet reads as a formula (-, =, +, @), so every export carries it unchanged."""
    return secrets.token_hex(16)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class EventRecord(Base):
    """A hosted workshop session: settings, host secret (hashed), join code and where it stands."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(6), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    host_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    pack: Mapped[str] = mapped_column(String(40))
    # phases, eps range, round style, limits: validated by app.game.events.EventSettings
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="lobby")  # lobby, running, paused, ended
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    phase: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    remaining_s: Mapped[float | None] = mapped_column(Float, nullable=True)  # time left while paused
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    shared_rounds: Mapped[int] = mapped_column(Integer, default=0)  # "together" images opened so far


class AttackedImage:
    """The columns of one attacked image: how it was made (opponent, attack, parameters, budget, seed, condition)
    and what the opponent answered. Shared by a player's round and by a room's together image, whose per-player
    copies take every one of these columns over (``attacked_image_columns``)."""

    pack: Mapped[str] = mapped_column(String(40))
    opponent: Mapped[str] = mapped_column(String(60))
    attack: Mapped[str] = mapped_column(String(40))
    attack_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    eps: Mapped[float] = mapped_column(Float)
    image_index: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)
    true_label: Mapped[int] = mapped_column(Integer)
    clean_label: Mapped[int] = mapped_column(Integer)
    clean_confidence: Mapped[float] = mapped_column(Float)
    model_label: Mapped[int] = mapped_column(Integer)
    model_confidence: Mapped[float] = mapped_column(Float)
    model_probs: Mapped[list[float]] = mapped_column(JSON)
    linf: Mapped[float] = mapped_column(Float)
    # The budget's norm (linf, l2 or l0: eps is then an L2 radius, or a per-pixel cap on a few pixels), the L2 size
    # of the shown change, and for black-box attacks the model queries used and allowed.
    norm: Mapped[str] = mapped_column(String(8), default="linf", server_default="linf")
    l2: Mapped[float | None] = mapped_column(Float, nullable=True)
    queries: Mapped[int | None] = mapped_column(Integer, nullable=True)
    query_budget: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Iterative attacks that count their gradient steps (PGD): the steps this image took; fewer than the attack's
    # ``steps`` when it stopped early because the shown image already fooled the opponent (issue 15).
    steps_run: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Transfer rounds: the model the attack was crafted on (the opponent only answers the finished image).
    surrogate: Mapped[str | None] = mapped_column(String(60), nullable=True)
    # adversarial, clean, noise, flipped or transfer (science mode's controls); plain play is adversarial.
    condition: Mapped[str] = mapped_column(String(16), default="adversarial", server_default="adversarial")
    # Flash mode: how long the image was meant to be on screen before the mask (None: shown until answered).
    flash_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Defended opponents: what the defense did to the shown image (rejected, reformed, certified, withstood, fooled;
    # app/ml/defenses/outcome.py) and a certified model's proven L∞ radius around the clean image (pixel units).
    defense_verdict: Mapped[str | None] = mapped_column(String(16), nullable=True)
    certified_radius: Mapped[float | None] = mapped_column(Float, nullable=True)
    clean_png: Mapped[bytes] = mapped_column(LargeBinary)
    adversarial_png: Mapped[bytes] = mapped_column(LargeBinary)
    # Text rounds (issue #18, app/game/text): kind "text", the definition as written and as shown (the PNGs are
    # empty), the word positions that changed, the word count and the MiniLM similarity of shown to original. eps
    # holds the budget as a share of words, norm "words", linf the share that changed, image_index the text's.
    kind: Mapped[str] = mapped_column(String(8), default="image", server_default="image")
    original_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    shown_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    changed_words: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    n_words: Mapped[int | None] = mapped_column(Integer, nullable=True)
    similarity: Mapped[float | None] = mapped_column(Float, nullable=True)


def attacked_image_columns(record: AttackedImage) -> dict[str, Any]:
    """Every AttackedImage column of ``record``, by name: what a copy of a shared image takes over."""
    return {name: getattr(record, name) for name in AttackedImage.__annotations__}


class SharedRoundRecord(AttackedImage, Base):
    """One adversarial image shown to a whole room at once ("together" rounds). It is attacked once; each player
    gets a RoundRecord copy (same pixels, same model answer) whose shared_round_id points here."""

    __tablename__ = "shared_rounds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    phase: Mapped[int] = mapped_column(Integer, default=0)
    opens_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


UNCLAIMED_FRESH = "claimed_at IS NULL AND NOT fixed"


class StockImageRecord(AttackedImage, Base):
    """An attacked image made ahead of time (app/game/stock.py), waiting for a round with the same settings. Rows
    outlive restarts; ``claimed_at`` is set once, in the transaction of the round that shows the image."""

    __tablename__ = "stock_images"
    # The claims' indexes (app/game/stock.py), unclaimed fresh images oldest first, by key and by event: a claim
    # reads one index entry instead of skipping every image already served (benchmarks/RESULTS.md).
    __table_args__ = tuple(
        Index(name, column, "id", postgresql_where=text(UNCLAIMED_FRESH), sqlite_where=text(UNCLAIMED_FRESH))
        for name, column in (
            ("ix_stock_images_unclaimed", "stock_key"),
            ("ix_stock_images_event_unclaimed", "event_id"),
        )
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # sha256 of (opponent, attack, parameters, condition, budget): what makes two images interchangeable
    stock_key: Mapped[str] = mapped_column(String(64), index=True)
    # the event it was prepared for (its progress counts it); any round with the same key may still claim it
    event_id: Mapped[str | None] = mapped_column(
        ForeignKey("events.id", ondelete="SET NULL"), nullable=True, index=True
    )
    made_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # An item of its event's fixed set (issue 15): shown to every player of that event once, never claimed, so
    # ``claimed_at`` stays empty and a fresh round with the same key never takes it.
    fixed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())


class PlayerRecord(Base):
    __tablename__ = "players"
    # Within an event a nickname is taken once; outside events (event_id NULL) duplicates stay allowed, since
    # NULLs never collide in a unique constraint on SQLite or PostgreSQL.
    __table_args__ = (UniqueConstraint("event_id", "nickname_key", name="uq_players_event_id_nickname_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    event_id: Mapped[str | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), nullable=True, index=True)
    nickname_key: Mapped[str | None] = mapped_column(String(24), nullable=True)  # casefolded, for events only
    removed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    nickname: Mapped[str] = mapped_column(String(24))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    score: Mapped[int] = mapped_column(Integer, default=0)
    streak: Mapped[int] = mapped_column(Integer, default=0)
    best_streak: Mapped[int] = mapped_column(Integer, default=0)
    level: Mapped[int] = mapped_column(Integer, default=0)

    rounds: Mapped[list[RoundRecord]] = relationship(back_populates="player")
    # Read only with the player (app/game/players.player_by_token), so that the session holds the event for the
    # request's next steps; never loaded on access.
    event: Mapped[EventRecord | None] = relationship(viewonly=True, lazy="raise")


class RoundRecord(AttackedImage, Base):
    """One image shown to one player, with everything needed to show it again and to export it."""

    __tablename__ = "rounds"
    # One copy of a shared ("together") image per player, and one pending round per player, even when two
    # requests race: the database decides, not a read before the write.
    __table_args__ = (
        UniqueConstraint("player_id", "shared_round_id", name="uq_rounds_player_id_shared_round_id"),
        Index("uq_rounds_pending_player_id", "pending_player_id", unique=True),
        # A fixed-set event shows each of its items to a player once (NULL outside fixed sets: never collides).
        Index("uq_rounds_player_id_item_id", "player_id", "item_id", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    player_id: Mapped[str] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), nullable=True, index=True)
    phase: Mapped[int | None] = mapped_column(Integer, nullable=True)
    shared_round_id: Mapped[str | None] = mapped_column(
        ForeignKey("shared_rounds.id", ondelete="CASCADE"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    level: Mapped[int] = mapped_column(Integer, default=0)
    # classify (say what the image shows) or guess_machine (pick the machine's answer between it and ``foil``,
    # as in Zhou & Firestone 2019); a guess is right when it names the machine's answer. The pair always holds the
    # truth (app/game/rounds.pick_foil), so it does not give away whether the machine was fooled.
    task: Mapped[str] = mapped_column(String(16), default="classify", server_default="classify")
    foil: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The player's id while this plain-play or own-pace round waits for its answer, then NULL (NULLs never collide
    # in the unique index). Together copies leave it NULL: the room's clock, not the player, opens those.
    pending_player_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Fixed-set events: the item (a stock image of the event's set, stock_images.id) this round shows; every player
    # of the event sees the same items, each once, in their own order. NULL for fresh images.
    item_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    player: Mapped[PlayerRecord] = relationship(back_populates="rounds")
    answer: Mapped[AnswerRecord | None] = relationship(back_populates="round", uselist=False)


class AnswerRecord(Base):
    """A player's one answer to a round. The unique round_id is what makes 'one answer per round' hold."""

    __tablename__ = "answers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    round_id: Mapped[str] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), unique=True)
    player_id: Mapped[str] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), index=True
    )
    choice: Mapped[int] = mapped_column(Integer)
    correct: Mapped[bool] = mapped_column(Boolean)
    model_correct: Mapped[bool] = mapped_column(Boolean)
    points: Mapped[int] = mapped_column(Integer)
    response_ms: Mapped[int] = mapped_column(Integer)
    # Flash mode: the on-screen time the browser measured (requestAnimationFrame), and whether it missed the
    # intended time by more than a frame or was not measured at all (such answers are flagged, not dropped).
    shown_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    timing_flagged: Mapped[bool | None] = mapped_column(Boolean, nullable=True)

    round: Mapped[RoundRecord] = relationship(back_populates="answer")


class TextEditRecord(Base):
    """One "fool the machine yourself" round (app/game/fool_text): a definition the opponent got right, the
    player's edit of it, and the opponent's answers before and after. ``status`` is open (being edited), won (the
    answer changed within the rules), lost (submitted within the rules, the answer held) or skipped."""

    __tablename__ = "text_edits"
    # One open round per player, decided by the database as for image rounds (NULLs never collide).
    __table_args__ = (Index("uq_text_edits_open_player_id", "open_player_id", unique=True),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    player_id: Mapped[str] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), index=True)
    open_player_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(8), default="open", server_default="open", index=True)
    pack: Mapped[str] = mapped_column(String(40))
    opponent: Mapped[str] = mapped_column(String(60))
    text_index: Mapped[int] = mapped_column(Integer)  # in the pack's test split
    original: Mapped[str] = mapped_column(String(600))
    true_label: Mapped[int] = mapped_column(Integer)
    budget: Mapped[float] = mapped_column(Float)  # share of the original's words that may change
    before_label: Mapped[int] = mapped_column(Integer)
    before_probs: Mapped[list[float]] = mapped_column(JSON)
    edited: Mapped[str | None] = mapped_column(String(600), nullable=True)
    after_label: Mapped[int | None] = mapped_column(Integer, nullable=True)
    after_probs: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    n_words: Mapped[int] = mapped_column(Integer)
    words_changed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    similarity: Mapped[float | None] = mapped_column(Float, nullable=True)
    similarity_floor: Mapped[float | None] = mapped_column(Float, nullable=True)


class TextValidationRecord(Base):
    """Another player's reading of a won human-written text: shown without its truth, answered once."""

    __tablename__ = "text_validations"
    __table_args__ = (
        UniqueConstraint("edit_id", "player_id", name="uq_text_validations_edit_id_player_id"),
        Index("uq_text_validations_open_player_id", "open_player_id", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    edit_id: Mapped[str] = mapped_column(ForeignKey("text_edits.id", ondelete="CASCADE"), index=True)
    player_id: Mapped[str] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), index=True)
    open_player_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # until answered
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    choice: Mapped[int | None] = mapped_column(Integer, nullable=True)
    agrees: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # the choice is the original's category


class PolicyRoundRecord(Base):
    """One pick-the-moments round (issue 19, app/game/policy.py): a seeded CartPole episode in which the player may
    attack at most ``max_attacked_steps`` steps with ``budget``, against the strategically-timed heuristic with the
    same K and budget. The episodes are not stored: they replay bit for bit from (agent, seed, budget, K, picks).
    Played once: ``played_at`` is set by a conditional UPDATE, and ``pending_player_id`` (the player's id until then,
    unique) keeps one unplayed round per player, as for image rounds."""

    __tablename__ = "policy_rounds"
    __table_args__ = (Index("uq_policy_rounds_pending_player_id", "pending_player_id", unique=True),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    player_id: Mapped[str] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    agent: Mapped[str] = mapped_column(String(60))
    seed: Mapped[int] = mapped_column(BigInteger)
    budget: Mapped[float] = mapped_column(Float)
    max_attacked_steps: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[float] = mapped_column(Float)
    clean_return: Mapped[int] = mapped_column(Integer)
    heuristic_return: Mapped[int] = mapped_column(Integer)
    heuristic_steps: Mapped[list[int]] = mapped_column(JSON)
    pending_player_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    played_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    picks: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    player_return: Mapped[int | None] = mapped_column(Integer, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(8), nullable=True)  # win, tie or loss against the heuristic
    points: Mapped[int | None] = mapped_column(Integer, nullable=True)

"""Database tables. In this project a *model* is a classifier, so these are called tables and records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    func,
)
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


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PlayerRecord(Base):
    __tablename__ = "players"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    nickname: Mapped[str] = mapped_column(String(24))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    score: Mapped[int] = mapped_column(Integer, default=0)
    streak: Mapped[int] = mapped_column(Integer, default=0)
    best_streak: Mapped[int] = mapped_column(Integer, default=0)
    level: Mapped[int] = mapped_column(Integer, default=0)

    rounds: Mapped[list[RoundRecord]] = relationship(back_populates="player")


class RoundRecord(Base):
    """One image shown to one player, with everything needed to show it again and to export it."""

    __tablename__ = "rounds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    player_id: Mapped[str] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    pack: Mapped[str] = mapped_column(String(40))
    opponent: Mapped[str] = mapped_column(String(60))
    attack: Mapped[str] = mapped_column(String(40))
    attack_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    eps: Mapped[float] = mapped_column(Float)
    level: Mapped[int] = mapped_column(Integer, default=0)
    image_index: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(BigInteger)
    true_label: Mapped[int] = mapped_column(Integer)
    clean_label: Mapped[int] = mapped_column(Integer)
    clean_confidence: Mapped[float] = mapped_column(Float)
    model_label: Mapped[int] = mapped_column(Integer)
    model_confidence: Mapped[float] = mapped_column(Float)
    model_probs: Mapped[list[float]] = mapped_column(JSON)
    linf: Mapped[float] = mapped_column(Float)
    clean_png: Mapped[bytes] = mapped_column(LargeBinary)
    adversarial_png: Mapped[bytes] = mapped_column(LargeBinary)

    player: Mapped[PlayerRecord] = relationship(back_populates="rounds")
    answer: Mapped[AnswerRecord | None] = relationship(back_populates="round", uselist=False)


class AnswerRecord(Base):
    """A player's one answer to a round. The unique round_id is what makes 'one answer per round' hold."""

    __tablename__ = "answers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
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

    round: Mapped[RoundRecord] = relationship(back_populates="answer")

"""The tables of "fool it by hand" (issue #21): paintings, each painting's strokes with the opponent's answers,
and the machine's smallest attack per image and norm. Declared on the shared Base (app/db/tables.py);
app/db/__init__.py imports this module so that Base.metadata always holds them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db.tables import Base, new_id, utcnow


class PaintingRecord(Base):
    """An image a person edited to fool the opponent (issue #21, app/game/paint.py): the clean test image, the
    pixels painted so far and how many strokes made them (each stroke and the opponent's answer to it is a
    PaintStrokeRecord, so a stroke inserts one row instead of rewriting the whole history). ``tool`` is brush (an
    L∞ budget of ``budget`` grey levels) or pencil (an L0 budget of ``budget`` pixels)."""

    __tablename__ = "paintings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    player_id: Mapped[str] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str | None] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    pack: Mapped[str] = mapped_column(String(40))
    opponent: Mapped[str] = mapped_column(String(60))
    image_index: Mapped[int] = mapped_column(Integer)
    true_label: Mapped[int] = mapped_column(Integer)
    tool: Mapped[str] = mapped_column(String(8))  # brush (linf) or pencil (l0)
    budget: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="painting")  # painting, fooled, gave_up
    # The mapper's version counter: an UPDATE lands only on the revision it read (app/game/paint_rounds.add_stroke).
    revision: Mapped[int] = mapped_column(Integer)
    __mapper_args__ = {"version_id_col": revision}
    stroke_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    model_label: Mapped[int] = mapped_column(Integer)
    model_probs: Mapped[list[float]] = mapped_column(JSON)
    clean_probs: Mapped[list[float]] = mapped_column(JSON)
    pixels: Mapped[int] = mapped_column(Integer, default=0)
    l2: Mapped[float] = mapped_column(Float, default=0.0)
    linf: Mapped[float] = mapped_column(Float, default=0.0)
    points: Mapped[int] = mapped_column(Integer, default=0)
    clean_png: Mapped[bytes] = mapped_column(LargeBinary)
    painted_png: Mapped[bytes] = mapped_column(LargeBinary)


class PaintStrokeRecord(Base):
    """One accepted stroke of a painting, as the rules keep it (app/game/paint.Stroke.as_json), and the opponent's
    answer on the pixels painted after it. ``number`` counts from 1 in the order the strokes were applied; the
    primary key on (painting, number) refuses a second stroke written on the same count."""

    __tablename__ = "paint_strokes"

    painting_id: Mapped[str] = mapped_column(ForeignKey("paintings.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    stroke: Mapped[dict[str, Any]] = mapped_column(JSON)
    label: Mapped[int] = mapped_column(Integer)
    probabilities: Mapped[list[float]] = mapped_column(JSON)


class SmallestAttackRecord(Base):
    """The machine's smallest successful attack on one test image in one norm (app/ml/measure/smallest.py), stored
    once so that every painter of the image is compared with the same attack."""

    __tablename__ = "smallest_attacks"
    __table_args__ = (
        UniqueConstraint("opponent", "image_index", "norm", name="uq_smallest_attacks_opponent_image_index_norm"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    opponent: Mapped[str] = mapped_column(String(60))
    image_index: Mapped[int] = mapped_column(Integer)
    norm: Mapped[str] = mapped_column(String(8))
    attack: Mapped[str] = mapped_column(String(40))
    found: Mapped[bool] = mapped_column(Boolean)
    pixels: Mapped[int] = mapped_column(Integer)
    l2: Mapped[float] = mapped_column(Float)
    linf: Mapped[float] = mapped_column(Float)
    label: Mapped[int] = mapped_column(Integer)
    elapsed_ms: Mapped[float] = mapped_column(Float)
    adversarial_png: Mapped[bytes] = mapped_column(LargeBinary)
    made_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now())

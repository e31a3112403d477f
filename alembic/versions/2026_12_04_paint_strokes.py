"""paint strokes: each stroke of a painting and the opponent's answer to it in their own table, and a stroke count
on the painting, so that a stroke inserts one row instead of rewriting the painting's whole history (issue #21)

Revision ID: paint_strokes
Revises: prepared_event_claim
Create Date: 2026-12-04 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "paint_strokes"
down_revision: str | None = "prepared_event_claim"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

paintings = sa.table(
    "paintings",
    sa.column("id", sa.String()),
    sa.column("strokes", sa.JSON()),
    sa.column("answers", sa.JSON()),
    sa.column("stroke_count", sa.Integer()),
)
paint_strokes = sa.table(
    "paint_strokes",
    sa.column("painting_id", sa.String()),
    sa.column("number", sa.Integer()),
    sa.column("stroke", sa.JSON()),
    sa.column("label", sa.Integer()),
    sa.column("probabilities", sa.JSON()),
)


def upgrade() -> None:
    op.create_table(
        "paint_strokes",
        sa.Column("painting_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("stroke", sa.JSON(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["painting_id"], ["paintings.id"], name=op.f("fk_paint_strokes_painting_id_paintings"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("painting_id", "number", name=op.f("pk_paint_strokes")),
    )
    op.add_column("paintings", sa.Column("stroke_count", sa.Integer(), server_default="0", nullable=False))
    bind = op.get_bind()
    history = sa.select(paintings.c.id, paintings.c.strokes, paintings.c.answers)
    for painting_id, strokes, answers in bind.execute(history):
        # Every accepted stroke got exactly one answer, numbered from 1 in the order the strokes were applied.
        answer_of = {int(answer["stroke"]): answer for answer in answers or []}
        rows = [
            {
                "painting_id": painting_id,
                "number": number,
                "stroke": stroke,
                "label": answer_of[number]["label"],
                "probabilities": answer_of[number]["probabilities"],
            }
            for number, stroke in enumerate(strokes or [], start=1)
        ]
        if rows:
            bind.execute(paint_strokes.insert(), rows)
        bind.execute(paintings.update().where(paintings.c.id == painting_id).values(stroke_count=len(rows)))
    with op.batch_alter_table("paintings") as batch:
        batch.drop_column("strokes")
        batch.drop_column("answers")


def downgrade() -> None:
    empty = sa.text("'[]'")
    with op.batch_alter_table("paintings") as batch:
        batch.add_column(sa.Column("strokes", sa.JSON(), server_default=empty, nullable=False))
        batch.add_column(sa.Column("answers", sa.JSON(), server_default=empty, nullable=False))
    bind = op.get_bind()
    history: dict[str, tuple[list[object], list[object]]] = {}
    query = sa.select(paint_strokes).order_by(paint_strokes.c.painting_id, paint_strokes.c.number)
    for row in bind.execute(query).mappings():
        strokes, answers = history.setdefault(row["painting_id"], ([], []))
        strokes.append(row["stroke"])
        answers.append({"stroke": row["number"], "label": row["label"], "probabilities": row["probabilities"]})
    for painting_id, (strokes, answers) in history.items():
        bind.execute(paintings.update().where(paintings.c.id == painting_id).values(strokes=strokes, answers=answers))
    with op.batch_alter_table("paintings") as batch:
        batch.alter_column("strokes", server_default=None)
        batch.alter_column("answers", server_default=None)
        batch.drop_column("stroke_count")
    op.drop_table("paint_strokes")

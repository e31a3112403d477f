"""paint edits: images people painted to fool the opponent (strokes, answers, final pixels) and the machine's
smallest attack per image and norm (issue #21)

Revision ID: paint_edits
Revises: stock15_stock_images
Create Date: 2026-12-03 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "paint_edits"
down_revision: str | None = "policy_rounds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "paintings",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("player_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pack", sa.String(length=40), nullable=False),
        sa.Column("opponent", sa.String(length=60), nullable=False),
        sa.Column("image_index", sa.Integer(), nullable=False),
        sa.Column("true_label", sa.Integer(), nullable=False),
        sa.Column("tool", sa.String(length=8), nullable=False),
        sa.Column("budget", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("strokes", sa.JSON(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("model_label", sa.Integer(), nullable=False),
        sa.Column("model_probs", sa.JSON(), nullable=False),
        sa.Column("clean_probs", sa.JSON(), nullable=False),
        sa.Column("pixels", sa.Integer(), nullable=False),
        sa.Column("l2", sa.Float(), nullable=False),
        sa.Column("linf", sa.Float(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("clean_png", sa.LargeBinary(), nullable=False),
        sa.Column("painted_png", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_paintings_player_id_players"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_paintings_event_id_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paintings")),
    )
    op.create_index(op.f("ix_paintings_player_id"), "paintings", ["player_id"], unique=False)
    op.create_index(op.f("ix_paintings_event_id"), "paintings", ["event_id"], unique=False)
    op.create_table(
        "smallest_attacks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("opponent", sa.String(length=60), nullable=False),
        sa.Column("image_index", sa.Integer(), nullable=False),
        sa.Column("norm", sa.String(length=8), nullable=False),
        sa.Column("attack", sa.String(length=40), nullable=False),
        sa.Column("found", sa.Boolean(), nullable=False),
        sa.Column("pixels", sa.Integer(), nullable=False),
        sa.Column("l2", sa.Float(), nullable=False),
        sa.Column("linf", sa.Float(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("elapsed_ms", sa.Float(), nullable=False),
        sa.Column("adversarial_png", sa.LargeBinary(), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smallest_attacks")),
        sa.UniqueConstraint("opponent", "image_index", "norm", name="uq_smallest_attacks_opponent_image_index_norm"),
    )


def downgrade() -> None:
    op.drop_table("smallest_attacks")
    op.drop_index(op.f("ix_paintings_event_id"), table_name="paintings")
    op.drop_index(op.f("ix_paintings_player_id"), table_name="paintings")
    op.drop_table("paintings")

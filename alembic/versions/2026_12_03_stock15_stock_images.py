"""stock images: attacked images made ahead of time for an event's rounds, claimed once each

Revision ID: stock15_stock_images
Revises: limits16_pending_round
Create Date: 2026-12-03 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "stock15_stock_images"
down_revision: str | None = "limits16_pending_round"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stock_images",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stock_key", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=True),
        sa.Column("made_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pack", sa.String(length=40), nullable=False),
        sa.Column("opponent", sa.String(length=60), nullable=False),
        sa.Column("attack", sa.String(length=40), nullable=False),
        sa.Column("attack_params", sa.JSON(), nullable=False),
        sa.Column("eps", sa.Float(), nullable=False),
        sa.Column("image_index", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("true_label", sa.Integer(), nullable=False),
        sa.Column("clean_label", sa.Integer(), nullable=False),
        sa.Column("clean_confidence", sa.Float(), nullable=False),
        sa.Column("model_label", sa.Integer(), nullable=False),
        sa.Column("model_confidence", sa.Float(), nullable=False),
        sa.Column("model_probs", sa.JSON(), nullable=False),
        sa.Column("linf", sa.Float(), nullable=False),
        sa.Column("norm", sa.String(length=8), server_default="linf", nullable=False),
        sa.Column("l2", sa.Float(), nullable=True),
        sa.Column("queries", sa.Integer(), nullable=True),
        sa.Column("query_budget", sa.Integer(), nullable=True),
        sa.Column("surrogate", sa.String(length=60), nullable=True),
        sa.Column("condition", sa.String(length=16), server_default="adversarial", nullable=False),
        sa.Column("flash_ms", sa.Integer(), nullable=True),
        sa.Column("defense_verdict", sa.String(length=16), nullable=True),
        sa.Column("certified_radius", sa.Float(), nullable=True),
        sa.Column("clean_png", sa.LargeBinary(), nullable=False),
        sa.Column("adversarial_png", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_stock_images_event_id_events"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_images")),
    )
    op.create_index(op.f("ix_stock_images_stock_key"), "stock_images", ["stock_key"], unique=False)
    op.create_index(op.f("ix_stock_images_event_id"), "stock_images", ["event_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_stock_images_event_id"), table_name="stock_images")
    op.drop_index(op.f("ix_stock_images_stock_key"), table_name="stock_images")
    op.drop_table("stock_images")

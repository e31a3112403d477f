"""text edits: human-written adversarial texts (fool the machine yourself) and other players' validations of them

Revision ID: text_fool_edits
Revises: stock15_stock_images
Create Date: 2026-12-03 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "text_fool_edits"
down_revision: str | None = "text_play_rounds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "text_edits",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("player_id", sa.String(length=32), nullable=False),
        sa.Column("open_player_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=8), server_default="open", nullable=False),
        sa.Column("pack", sa.String(length=40), nullable=False),
        sa.Column("opponent", sa.String(length=60), nullable=False),
        sa.Column("text_index", sa.Integer(), nullable=False),
        sa.Column("original", sa.String(length=600), nullable=False),
        sa.Column("true_label", sa.Integer(), nullable=False),
        sa.Column("budget", sa.Float(), nullable=False),
        sa.Column("before_label", sa.Integer(), nullable=False),
        sa.Column("before_probs", sa.JSON(), nullable=False),
        sa.Column("edited", sa.String(length=600), nullable=True),
        sa.Column("after_label", sa.Integer(), nullable=True),
        sa.Column("after_probs", sa.JSON(), nullable=True),
        sa.Column("n_words", sa.Integer(), nullable=False),
        sa.Column("words_changed", sa.Integer(), nullable=True),
        sa.Column("similarity", sa.Float(), nullable=True),
        sa.Column("similarity_floor", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_text_edits_player_id_players"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_text_edits")),
    )
    op.create_index(op.f("ix_text_edits_player_id"), "text_edits", ["player_id"], unique=False)
    op.create_index(op.f("ix_text_edits_submitted_at"), "text_edits", ["submitted_at"], unique=False)
    op.create_index(op.f("ix_text_edits_status"), "text_edits", ["status"], unique=False)
    op.create_index("uq_text_edits_open_player_id", "text_edits", ["open_player_id"], unique=True)
    op.create_table(
        "text_validations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("edit_id", sa.String(length=32), nullable=False),
        sa.Column("player_id", sa.String(length=32), nullable=False),
        sa.Column("open_player_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("choice", sa.Integer(), nullable=True),
        sa.Column("agrees", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["edit_id"], ["text_edits.id"], name=op.f("fk_text_validations_edit_id_text_edits"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_text_validations_player_id_players"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_text_validations")),
        sa.UniqueConstraint("edit_id", "player_id", name="uq_text_validations_edit_id_player_id"),
    )
    op.create_index(op.f("ix_text_validations_edit_id"), "text_validations", ["edit_id"], unique=False)
    op.create_index(op.f("ix_text_validations_player_id"), "text_validations", ["player_id"], unique=False)
    op.create_index("uq_text_validations_open_player_id", "text_validations", ["open_player_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_text_validations_open_player_id", table_name="text_validations")
    op.drop_index(op.f("ix_text_validations_player_id"), table_name="text_validations")
    op.drop_index(op.f("ix_text_validations_edit_id"), table_name="text_validations")
    op.drop_table("text_validations")
    op.drop_index("uq_text_edits_open_player_id", table_name="text_edits")
    op.drop_index(op.f("ix_text_edits_status"), table_name="text_edits")
    op.drop_index(op.f("ix_text_edits_submitted_at"), table_name="text_edits")
    op.drop_index(op.f("ix_text_edits_player_id"), table_name="text_edits")
    op.drop_table("text_edits")

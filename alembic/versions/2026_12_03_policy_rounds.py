"""policy rounds: pick-the-moments rounds of the CartPole agent under attack (issue 19), played once each

Revision ID: policy_rounds
Revises: stock15_stock_images
Create Date: 2026-12-03 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "policy_rounds"
down_revision: str | None = "text_fool_edits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policy_rounds",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("player_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("agent", sa.String(length=60), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("budget", sa.Float(), nullable=False),
        sa.Column("max_attacked_steps", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("clean_return", sa.Integer(), nullable=False),
        sa.Column("heuristic_return", sa.Integer(), nullable=False),
        sa.Column("heuristic_steps", sa.JSON(), nullable=False),
        sa.Column("pending_player_id", sa.String(length=32), nullable=True),
        sa.Column("played_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("picks", sa.JSON(), nullable=True),
        sa.Column("player_return", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=8), nullable=True),
        sa.Column("points", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name=op.f("fk_policy_rounds_player_id_players"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_policy_rounds_event_id_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_rounds")),
    )
    op.create_index(op.f("ix_policy_rounds_player_id"), "policy_rounds", ["player_id"], unique=False)
    op.create_index(op.f("ix_policy_rounds_event_id"), "policy_rounds", ["event_id"], unique=False)
    op.create_index(op.f("ix_policy_rounds_played_at"), "policy_rounds", ["played_at"], unique=False)
    op.create_index("uq_policy_rounds_pending_player_id", "policy_rounds", ["pending_player_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_policy_rounds_pending_player_id", table_name="policy_rounds")
    op.drop_index(op.f("ix_policy_rounds_played_at"), table_name="policy_rounds")
    op.drop_index(op.f("ix_policy_rounds_event_id"), table_name="policy_rounds")
    op.drop_index(op.f("ix_policy_rounds_player_id"), table_name="policy_rounds")
    op.drop_table("policy_rounds")

"""one pending round per player: rounds.pending_player_id, unique, set while a round waits for its answer

Revision ID: limits16_pending_round
Revises: e7f3a91c2b44
Create Date: 2026-12-03 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "limits16_pending_round"
down_revision: str | None = "e7f3a91c2b44"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.add_column(sa.Column("pending_player_id", sa.String(length=32), nullable=True))
    # Rounds left unanswered before this revision stay unmarked: a player then simply starts a fresh one.
    op.create_index("uq_rounds_pending_player_id", "rounds", ["pending_player_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_rounds_pending_player_id", table_name="rounds")
    with op.batch_alter_table("rounds") as batch:
        batch.drop_column("pending_player_id")

"""flash timing: how long a flash-mode round meant to show its image, and how long the browser measured

Revision ID: c41d2f7e8a90
Revises: 7a1c0e5b9d24
Create Date: 2026-11-25 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "c41d2f7e8a90"
down_revision: str | None = "7a1c0e5b9d24"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.add_column(sa.Column("flash_ms", sa.Integer(), nullable=True))
    with op.batch_alter_table("shared_rounds") as batch:
        batch.add_column(sa.Column("flash_ms", sa.Integer(), nullable=True))
    with op.batch_alter_table("answers") as batch:
        batch.add_column(sa.Column("shown_ms", sa.Float(), nullable=True))
        batch.add_column(sa.Column("timing_flagged", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("answers") as batch:
        batch.drop_column("timing_flagged")
        batch.drop_column("shown_ms")
    with op.batch_alter_table("shared_rounds") as batch:
        batch.drop_column("flash_ms")
    with op.batch_alter_table("rounds") as batch:
        batch.drop_column("flash_ms")

"""guess the machine: a round's task (classify, or guess the machine's answer between it and a foil)

Revision ID: d52e3a8b1c07
Revises: c41d2f7e8a90
Create Date: 2026-11-25 18:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "d52e3a8b1c07"
down_revision: str | None = "c41d2f7e8a90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.add_column(sa.Column("task", sa.String(length=16), server_default="classify", nullable=False))
        batch.add_column(sa.Column("foil", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.drop_column("foil")
        batch.drop_column("task")

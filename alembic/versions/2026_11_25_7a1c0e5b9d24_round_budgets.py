"""round budgets: norm, L2 size, query counts, surrogate and condition on rounds and shared rounds

Revision ID: 7a1c0e5b9d24
Revises: 2ce3359786df
Create Date: 2026-11-25 17:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "7a1c0e5b9d24"
down_revision: str | None = "2ce3359786df"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("rounds", "shared_rounds")


def _columns() -> list[sa.Column]:
    return [
        sa.Column("norm", sa.String(length=8), server_default="linf", nullable=False),
        sa.Column("l2", sa.Float(), nullable=True),
        sa.Column("queries", sa.Integer(), nullable=True),
        sa.Column("query_budget", sa.Integer(), nullable=True),
        sa.Column("surrogate", sa.String(length=60), nullable=True),
        sa.Column("condition", sa.String(length=16), server_default="adversarial", nullable=False),
    ]


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in _columns():
                batch.add_column(column)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in reversed(_columns()):
                batch.drop_column(column.name)

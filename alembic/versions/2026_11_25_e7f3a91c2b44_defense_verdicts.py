"""defense verdicts: what a defended opponent's defense did to a round's image, and a certified model's radius

Revision ID: e7f3a91c2b44
Revises: d52e3a8b1c07
Create Date: 2026-11-25 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "e7f3a91c2b44"
down_revision: str | None = "d52e3a8b1c07"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("rounds", "shared_rounds")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("defense_verdict", sa.String(length=16), nullable=True))
            batch.add_column(sa.Column("certified_radius", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("certified_radius")
            batch.drop_column("defense_verdict")

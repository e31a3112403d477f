"""steps run: the gradient steps a round's attack took on its image (fewer where it stopped early)

Revision ID: rounds_fast_steps
Revises: stock15_stock_images
Create Date: 2026-12-03 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "rounds_fast_steps"
down_revision: str | None = "paint_edits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every table of attacked images (app/db/tables.AttackedImage): a stocked or shared image hands it to its rounds.
TABLES = ("rounds", "shared_rounds", "stock_images")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("steps_run", sa.Integer(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("steps_run")

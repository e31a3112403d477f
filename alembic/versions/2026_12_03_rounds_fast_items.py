"""fixed-set items: stock images that form an event's fixed set, and the item each round of such an event shows;
the claim's partial index of unclaimed fresh stock images

Revision ID: rounds_fast_items
Revises: rounds_fast_steps
Create Date: 2026-12-03 10:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "rounds_fast_items"
down_revision: str | None = "rounds_fast_steps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("stock_images", sa.Column("fixed", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("rounds", sa.Column("item_id", sa.Integer(), nullable=True))
    op.create_index("uq_rounds_player_id_item_id", "rounds", ["player_id", "item_id"], unique=True)
    # The claim reads one entry of this partial index instead of skipping every served image of its key.
    unclaimed = sa.text("claimed_at IS NULL AND NOT fixed")
    op.create_index(
        "ix_stock_images_unclaimed",
        "stock_images",
        ["stock_key", "id"],
        postgresql_where=unclaimed,
        sqlite_where=unclaimed,
    )


def downgrade() -> None:
    op.drop_index("ix_stock_images_unclaimed", table_name="stock_images")
    op.drop_index("uq_rounds_player_id_item_id", table_name="rounds")
    with op.batch_alter_table("rounds") as batch:
        batch.drop_column("item_id")
    with op.batch_alter_table("stock_images") as batch:
        batch.drop_column("fixed")

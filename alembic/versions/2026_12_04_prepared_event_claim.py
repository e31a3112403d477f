"""prepared events' claim: a partial index of each event's unclaimed fresh stock images, oldest first

Revision ID: prepared_event_claim
Revises: rounds_fast_items
Create Date: 2026-12-04 01:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "prepared_event_claim"
down_revision: str | None = "rounds_fast_items"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A round of a prepared event claims any of its event's images (app/game/stock.claim_for_event): one entry of
    # this index instead of a walk past every image of the event already served.
    unclaimed = sa.text("claimed_at IS NULL AND NOT fixed")
    op.create_index(
        "ix_stock_images_event_unclaimed",
        "stock_images",
        ["event_id", "id"],
        postgresql_where=unclaimed,
        sqlite_where=unclaimed,
    )


def downgrade() -> None:
    op.drop_index("ix_stock_images_event_unclaimed", table_name="stock_images")

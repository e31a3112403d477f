"""text rounds: a round kind, the definition as written and as shown, the words that changed (issue #18)

Revision ID: text_play_rounds
Revises: stock15_stock_images
Create Date: 2026-12-03 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "text_play_rounds"
down_revision: str | None = "stock15_stock_images"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every table holding an attacked image's columns (app/db/tables.py AttackedImage) gains the text columns.
TABLES = ("rounds", "shared_rounds", "stock_images")


def columns() -> list[sa.Column[object]]:
    return [
        sa.Column("kind", sa.String(length=8), server_default="image", nullable=False),
        sa.Column("original_text", sa.Text(), nullable=True),
        sa.Column("shown_text", sa.Text(), nullable=True),
        sa.Column("changed_words", sa.JSON(), nullable=True),
        sa.Column("n_words", sa.Integer(), nullable=True),
        sa.Column("similarity", sa.Float(), nullable=True),
    ]


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in columns():
                batch.add_column(column)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in reversed(columns()):
                batch.drop_column(column.name)

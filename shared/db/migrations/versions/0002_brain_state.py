"""The brain's resumable state: a brain_state row and the cost basis of open positions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "brain_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("market_time", UTC, nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_brain_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brain_state")),
    )
    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("cost", sa.Double(), nullable=False, server_default="0"))
    # Positions opened before this revision: their cost is at least qty x entry price.
    op.execute("UPDATE positions SET cost = qty * entry_price WHERE cost = 0")


def downgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        batch.drop_column("cost")
    op.drop_table("brain_state")

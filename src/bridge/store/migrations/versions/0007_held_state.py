"""Held state: what each tracker item holds of what the bridge manages, as the pull showed it.

The push plans against these rows instead of reading every item again; a row is replaced by each pull
that shows the item and updated by the bridge's own writes.

Revision: heldstate01
Follows: watchers01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import UTCDateTime

revision = "heldstate01"
down_revision = "watchers01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("links", sa.Text(), nullable=True),
        sa.Column("links_at", UTCDateTime(), nullable=True),
        sa.Column("duplicates", sa.Text(), nullable=False),
        sa.Column("container", sa.String(length=255), nullable=True),
        sa.Column("position", sa.Text(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "remote_id"),
    )


def downgrade() -> None:
    op.drop_table("held")

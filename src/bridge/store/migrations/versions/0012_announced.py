"""Chat announcements: each (announcement, channel) recorded before its webhook POST, and whether each
key result's target was met when last seen.

Revision: announce01
Follows: krperiod01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import UTCDateTime

revision = "announce01"
down_revision = "krperiod01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "announced",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("headline", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("outcome IN ('sending', 'sent', 'failed')", name="ck_announced_outcome"),
        sa.PrimaryKeyConstraint("key", "channel"),
    )
    op.create_table(
        "key_result_met",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("met", sa.Boolean(), nullable=False),
        sa.Column("times", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "remote_id"),
    )


def downgrade() -> None:
    op.drop_table("key_result_met")
    op.drop_table("announced")

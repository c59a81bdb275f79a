"""Milestone completions: whether the bridge last saw each milestone done and how many completions it
has seen (a milestone reached is announced once per completion), and since when it watches each tracker.

Revision: completion01
Follows: forecasthist01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import UTCDateTime

revision = "completion01"
down_revision = "forecasthist01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "milestone_completion",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("milestone_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("completions", sa.Integer(), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.Column("silent", sa.Boolean(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "milestone_id"),
    )
    op.create_table(
        "completion_watch",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )


def downgrade() -> None:
    op.drop_table("completion_watch")
    op.drop_table("milestone_completion")

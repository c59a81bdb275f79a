"""The forecast history: every change of an open milestone's P50/P85 finish dates, with its reason.

Revision: forecasthist01
Follows: flowfacts01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import UTCDateTime

revision = "forecasthist01"
down_revision = "flowfacts01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forecast_history",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("milestone_id", sa.String(length=255), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("team", sa.String(length=255), nullable=False),
        sa.Column("p50", UTCDateTime(), nullable=True),
        sa.Column("p85", UTCDateTime(), nullable=True),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("weekly_throughput", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", "milestone_id", "at"),
    )


def downgrade() -> None:
    op.drop_table("forecast_history")

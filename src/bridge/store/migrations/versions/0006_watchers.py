"""Watchers: how many people a tracker emails on each edit of a milestone or task (Jira's watch count),
kept by the pull so `bridge sync --dry-run` can say what a plan would send.

Revision: watchers01
Follows: statusnames01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "watchers01"
down_revision = "statusnames01"
branch_labels = None
depends_on = None

TABLES = ("milestone", "task")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("watchers", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE (SQLite has dropped columns since 3.35), so `--sql` can print it offline.
    for table in TABLES:
        op.drop_column(table, "watchers")

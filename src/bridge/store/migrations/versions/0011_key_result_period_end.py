"""Key results' period end: the last day of the period they are due by (an Asana goal's time period,
or the config's `period_end`), from which their status (on track, at risk, off track) is told.

Revision: krperiod01
Follows: completion01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "krperiod01"
down_revision = "completion01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("key_result", sa.Column("period_end", sa.Date(), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE (SQLite has dropped columns since 3.35), so `--sql` can print it offline.
    op.drop_column("key_result", "period_end")

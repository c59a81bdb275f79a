"""Status names: each raw status's display name (Jira status, Trello list, Asana section) by its id.

Stores made before it hold none; reports show those statuses by id until the next pull fills the table.

Revision: statusnames01
Follows: okrdrafts01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import UTCDateTime

revision = "statusnames01"
down_revision = "okrdrafts01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_name",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "remote_id"),
    )


def downgrade() -> None:
    op.drop_table("status_name")

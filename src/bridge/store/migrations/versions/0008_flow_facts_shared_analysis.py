"""Flow facts per task, the store's data version and the shared analysis.

`flow_fact` holds what the analysis needs from each task's history, written with the history; tasks
without a row are analysed from their history until the backfill (`bridge db backfill-facts`, also run
by the daemon in small chunks) writes it. `data_version` is one row counting the transactions that
changed what the analysis reads; `analysis` keeps analyses keyed by that version, the digest of the
analysis settings and the UTC day, so that a cycle or a report on an unchanged store reuses one.

Revision: flowfacts01
Follows: heldstate01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import UTCDateTime

revision = "flowfacts01"
down_revision = "heldstate01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flow_fact",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "item_id"),
    )
    op.create_table(
        "data_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "analysis",
        sa.Column("data_version", sa.BigInteger(), nullable=False),
        sa.Column("settings_digest", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("flow", sa.Boolean(), nullable=False),
        sa.Column("report", sa.LargeBinary(), nullable=False),
        sa.Column("document", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("pushed", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("data_version", "settings_digest", "day", "flow"),
    )


def downgrade() -> None:
    op.drop_table("analysis")
    op.drop_table("data_version")
    op.drop_table("flow_fact")

"""OKR drafts: milestones carry their description and labels, and a table keeps the drafted key results
and objectives that `bridge okr draft` proposes until one is adopted.

Revision: okrdrafts01
Follows: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import JSONList, UTCDateTime

revision = "okrdrafts01"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("milestone") as batch:
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("labels", JSONList(), nullable=True))
    op.create_table(
        "okr_draft",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("measure", sa.String(length=32), nullable=True),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.Column("parent_id", sa.String(length=32), nullable=True),
        sa.Column("members", JSONList(), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("reasons", JSONList(), nullable=True),
        sa.Column("terms", JSONList(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("adopted_as", sa.String(length=320), nullable=True),
        sa.Column("adopted_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('key_result', 'objective')", name="ck_okr_draft_kind"),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("okr_draft")
    with op.batch_alter_table("milestone") as batch:
        batch.drop_column("labels")
        batch.drop_column("description")

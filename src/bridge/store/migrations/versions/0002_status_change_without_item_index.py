"""Status history keeps one index, its primary key: the index by item is dropped.

The history is the largest table by far (ten or more rows per task) and is written in bulk on every
pull, while it is read in bulk by the analysis (all of a tracker's changes at once, which the primary
key's leading `source` serves). A second index, ordered by item, cost a random B-tree insert for every
row written: about a third of the time a first pull of a large site spends in the store.

Revision: 0002
Follows: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_status_change_item", table_name="status_change")


def downgrade() -> None:
    op.create_index("ix_status_change_item", "status_change", ["source", "item_id", "at"], unique=False)

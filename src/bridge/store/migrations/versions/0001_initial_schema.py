"""Initial schema: teams, OKRs, milestones, tasks, status history, dependencies, cursors, runs, written.

Revision: 0001
Follows: nothing
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import JSONList, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cursor",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(), nullable=True),
        sa.Column("signpost", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "stream"),
    )
    op.create_table(
        "dependency",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("blocker_id", sa.String(length=255), nullable=False),
        sa.Column("blocked_id", sa.String(length=255), nullable=False),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "blocker_id", "blocked_id"),
    )
    op.create_index("ix_dependency_blocked", "dependency", ["source", "blocked_id"], unique=False)
    op.create_table(
        "key_result",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("objective_id", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("target", sa.Float(), nullable=True),
        sa.Column("current", sa.Float(), nullable=True),
        sa.Column("start", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "remote_id"),
    )
    op.create_table(
        "milestone",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("team", sa.String(length=255), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("effort", sa.Float(), nullable=True),
        sa.Column("due", UTCDateTime(), nullable=True),
        sa.Column("raw_status", sa.String(length=255), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=True),
        sa.Column("updated", UTCDateTime(), nullable=True),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "category IN ('todo', 'in_progress', 'waiting', 'done')", name="ck_milestone_category"
        ),
        sa.PrimaryKeyConstraint("source", "remote_id"),
    )
    op.create_index("ix_milestone_team", "milestone", ["source", "team"], unique=False)
    op.create_table(
        "milestone_key_result",
        sa.Column("milestone_source", sa.String(length=64), nullable=False),
        sa.Column("milestone_id", sa.String(length=255), nullable=False),
        sa.Column("kr_source", sa.String(length=64), nullable=False),
        sa.Column("kr_id", sa.String(length=255), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("origin IN ('tracker', 'rule', 'suggested', 'confirmed')", name="ck_mkr_origin"),
        sa.PrimaryKeyConstraint("milestone_source", "milestone_id", "kr_source", "kr_id"),
    )
    op.create_index("ix_mkr_key_result", "milestone_key_result", ["kr_source", "kr_id"], unique=False)
    op.create_table(
        "objective",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "remote_id"),
    )
    op.create_table(
        "run",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("items_pulled", sa.Integer(), nullable=False),
        sa.Column("items_skipped", sa.Integer(), nullable=False),
        sa.Column("writes_planned", sa.Integer(), nullable=False),
        sa.Column("writes_done", sa.Integer(), nullable=False),
        sa.Column("writes_failed", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_run_source_started", "run", ["source", "started_at"], unique=False)
    op.create_table(
        "status_change",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("item_id", sa.String(length=255), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("from_status", sa.String(length=255), nullable=True),
        sa.Column("to_status", sa.String(length=255), nullable=False),
        sa.Column("from_category", sa.String(length=16), nullable=True),
        sa.Column("to_category", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "to_category IN ('todo', 'in_progress', 'waiting', 'done')", name="ck_status_change_to"
        ),
        sa.PrimaryKeyConstraint("source", "remote_id"),
    )
    op.create_index("ix_status_change_item", "status_change", ["source", "item_id", "at"], unique=False)
    op.create_table(
        "task",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("milestone_id", sa.String(length=255), nullable=True),
        sa.Column("team", sa.String(length=255), nullable=True),
        sa.Column("work_type", sa.String(length=255), nullable=True),
        sa.Column("raw_status", sa.String(length=255), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("created", UTCDateTime(), nullable=True),
        sa.Column("updated", UTCDateTime(), nullable=True),
        sa.Column("started", UTCDateTime(), nullable=True),
        sa.Column("done", UTCDateTime(), nullable=True),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("labels", JSONList(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("category IN ('todo', 'in_progress', 'waiting', 'done')", name="ck_task_category"),
        sa.PrimaryKeyConstraint("source", "remote_id"),
    )
    op.create_index("ix_task_milestone", "task", ["source", "milestone_id"], unique=False)
    op.create_index("ix_task_team_work_type", "task", ["team", "work_type"], unique=False)
    op.create_table(
        "team",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "remote_id"),
    )
    op.create_table(
        "written",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("field", sa.String(length=128), nullable=False),
        sa.Column("value_hash", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "remote_id", "field"),
    )


def downgrade() -> None:
    op.drop_table("written")
    op.drop_table("team")
    op.drop_table("task")
    op.drop_table("status_change")
    op.drop_table("run")
    op.drop_table("objective")
    op.drop_table("milestone_key_result")
    op.drop_table("milestone")
    op.drop_table("key_result")
    op.drop_table("dependency")
    op.drop_table("cursor")

"""Initial schema: definitions, cases, events, step visits, consents, timers.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 22:26:20.191049
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kf_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.String(length=64), nullable=False),
        sa.Column("process_version", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("assignee", sa.String(length=128), nullable=True),
        sa.Column("waiting_on", sa.String(length=20), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("pause_reason", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("child_name", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("kf_case", schema=None) as batch_op:
        batch_op.create_index("ix_case_process_step", ["process_id", "step"], unique=False)
        batch_op.create_index(batch_op.f("ix_kf_case_assignee"), ["assignee"], unique=False)
        batch_op.create_index(batch_op.f("ix_kf_case_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_kf_case_status"), ["status"], unique=False)

    op.create_table(
        "kf_consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=20), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("categories", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("valid_until", sa.String(length=10), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("kf_consent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kf_consent_case_id"), ["case_id"], unique=False)

    op.create_table(
        "kf_definition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deployed_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("process_id", "version", name="uq_definition_ref"),
    )
    with op.batch_alter_table("kf_definition", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kf_definition_process_id"), ["process_id"], unique=False)

    op.create_table(
        "kf_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=True),
        sa.Column("from_step", sa.String(length=64), nullable=True),
        sa.Column("to_step", sa.String(length=64), nullable=True),
        sa.Column("changes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("detail", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "seq", name="uq_event_case_seq"),
    )
    op.create_table(
        "kf_timer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("kf_timer", schema=None) as batch_op:
        batch_op.create_index("ix_timer_case", ["case_id"], unique=False)
        batch_op.create_index(
            "ix_timer_pending_due",
            ["due_at"],
            unique=False,
            sqlite_where=sa.text("fired_at IS NULL AND cancelled_at IS NULL"),
            postgresql_where=sa.text("fired_at IS NULL AND cancelled_at IS NULL"),
        )

    op.create_table(
        "kf_visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.String(length=64), nullable=False),
        sa.Column("process_version", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("agency", sa.String(length=20), nullable=True),
        sa.Column("waiting_on", sa.String(length=20), nullable=True),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_seconds", sa.Integer(), nullable=False),
        sa.Column("paused_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overran", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("kf_visit", schema=None) as batch_op:
        batch_op.create_index("ix_visit_case", ["case_id"], unique=False)
        batch_op.create_index(
            "ix_visit_open_due",
            ["due_at"],
            unique=False,
            sqlite_where=sa.text("left_at IS NULL"),
            postgresql_where=sa.text("left_at IS NULL"),
        )
        batch_op.create_index("ix_visit_process_step", ["process_id", "process_version", "step"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("kf_visit", schema=None) as batch_op:
        batch_op.drop_index("ix_visit_process_step")
        batch_op.drop_index(
            "ix_visit_open_due",
            sqlite_where=sa.text("left_at IS NULL"),
            postgresql_where=sa.text("left_at IS NULL"),
        )
        batch_op.drop_index("ix_visit_case")

    op.drop_table("kf_visit")
    with op.batch_alter_table("kf_timer", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_timer_pending_due",
            sqlite_where=sa.text("fired_at IS NULL AND cancelled_at IS NULL"),
            postgresql_where=sa.text("fired_at IS NULL AND cancelled_at IS NULL"),
        )
        batch_op.drop_index("ix_timer_case")

    op.drop_table("kf_timer")
    op.drop_table("kf_event")
    with op.batch_alter_table("kf_definition", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kf_definition_process_id"))

    op.drop_table("kf_definition")
    with op.batch_alter_table("kf_consent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kf_consent_case_id"))

    op.drop_table("kf_consent")
    with op.batch_alter_table("kf_case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kf_case_status"))
        batch_op.drop_index(batch_op.f("ix_kf_case_parent_id"))
        batch_op.drop_index(batch_op.f("ix_kf_case_assignee"))
        batch_op.drop_index("ix_case_process_step")

    op.drop_table("kf_case")

"""Visit statistics stored at close (office days, excess), reason code, handoff origin; findings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kf_visit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("office_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("excess_office_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reason_code", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("handoff_from", sa.String(length=20), nullable=True))
    with op.batch_alter_table("kf_case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step_entered_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "kf_finding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.String(length=64), nullable=False),
        sa.Column("process_version", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("agency", sa.String(length=20), nullable=True),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("kf_finding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kf_finding_visit_id"), ["visit_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("kf_finding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kf_finding_visit_id"))
    op.drop_table("kf_finding")
    with op.batch_alter_table("kf_case", schema=None) as batch_op:
        batch_op.drop_column("step_entered_at")
    with op.batch_alter_table("kf_visit", schema=None) as batch_op:
        batch_op.drop_column("handoff_from")
        batch_op.drop_column("reason_code")
        batch_op.drop_column("excess_office_days")
        batch_op.drop_column("office_days")

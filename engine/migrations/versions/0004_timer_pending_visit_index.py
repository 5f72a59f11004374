"""An index on the pending timers of a visit (leaving a step cancels them).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_PENDING = "fired_at IS NULL AND cancelled_at IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_timer_pending_visit",
        "kf_timer",
        ["visit_id"],
        unique=False,
        sqlite_where=sa.text(_PENDING),
        postgresql_where=sa.text(_PENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_timer_pending_visit", table_name="kf_timer")

"""Accounts and bearer tokens, the data-protection access log, idempotency records; the team of a case.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:  # type: ignore[type-arg]
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "kf_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "kf_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("kf_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kf_token_user_id"), ["user_id"], unique=False)
    op.create_table(
        "kf_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("access", sa.String(length=16), nullable=False),
        sa.Column("fields", _json(), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("kf_access", schema=None) as batch_op:
        batch_op.create_index("ix_access_case_at", ["case_id", "at"], unique=False)
    op.create_table(
        "kf_idempotency",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", _json(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("actor", "route", "key", name="uq_idempotency_actor_route_key"),
    )
    with op.batch_alter_table("kf_idempotency", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kf_idempotency_case_id"), ["case_id"], unique=False)
    with op.batch_alter_table("kf_case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("team", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_kf_case_team"), ["team"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("kf_case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kf_case_team"))
        batch_op.drop_column("team")
    with op.batch_alter_table("kf_idempotency", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kf_idempotency_case_id"))
    op.drop_table("kf_idempotency")
    with op.batch_alter_table("kf_access", schema=None) as batch_op:
        batch_op.drop_index("ix_access_case_at")
    op.drop_table("kf_access")
    with op.batch_alter_table("kf_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kf_token_user_id"))
    op.drop_table("kf_token")
    op.drop_table("kf_user")

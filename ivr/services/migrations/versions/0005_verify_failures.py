"""Failed identity checks counted across calls (per order and per caller key) for the self-service lock.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "verify_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("order_id", sa.String(length=24), nullable=False),
        sa.Column("caller_key", sa.String(length=64), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("verify_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_verify_failures_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_verify_failures_caller_key"), ["caller_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_verify_failures_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("verify_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_verify_failures_order_id"))
        batch_op.drop_index(batch_op.f("ix_verify_failures_caller_key"))
        batch_op.drop_index(batch_op.f("ix_verify_failures_at"))
    op.drop_table("verify_failures")

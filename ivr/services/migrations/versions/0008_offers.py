"""Personal offers: stock of tracked products, coupons issued to customers, restock-notice subscriptions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coupons",
        sa.Column("coupon_id", sa.String(length=24), nullable=False),
        sa.Column("customer_id", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=64), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("min_spend_cents", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("coupon_id"),
        sa.UniqueConstraint("customer_id", "template", name="uq_coupons_customer_template"),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupons_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "product_stock",
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("restock_on", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku"),
    )
    op.create_table(
        "restock_subscriptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=16), nullable=False),
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "sku", name="uq_restock_subscriptions_customer_sku"),
    )
    with op.batch_alter_table("restock_subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_restock_subscriptions_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_restock_subscriptions_sku"), ["sku"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("restock_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_restock_subscriptions_sku"))
        batch_op.drop_index(batch_op.f("ix_restock_subscriptions_customer_id"))

    op.drop_table("restock_subscriptions")
    op.drop_table("product_stock")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupons_customer_id"))

    op.drop_table("coupons")

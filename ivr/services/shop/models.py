"""Tables of the embedded shop (OMS). Every table shares ``ivr.services.db.Base`` and one Alembic history.

Money is integer cents (fen). Timestamps are stored as UTC and always read back timezone-aware
(``UtcDateTime``) on SQLite and PostgreSQL alike. Ids that callers read aloud (orders, RMAs, refunds,
tickets) are digit strings. Any change here needs a migration in ``ivr/services/migrations/versions``
(``tests/test_db_migrations.py`` fails when models and migrations differ).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ivr.services.db import Base


class UtcDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Customer(Base):
    __tablename__ = "customers"

    customer_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(20), index=True)
    city: Mapped[str] = mapped_column(String(32), default="")
    address: Mapped[str] = mapped_column(String(255), default="")
    vip: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Product(Base):
    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(32))
    price_cents: Mapped[int] = mapped_column(Integer)
    seven_day_return: Mapped[bool] = mapped_column(Boolean, default=True)  # 七天无理由 applies
    price_protect_days: Mapped[int] = mapped_column(Integer, default=0)  # 保价 window; 0 = not offered
    description: Mapped[str] = mapped_column(Text, default="")


class PriceChange(Base):
    """Price history of a product; the newest row equals ``products.price_cents``."""

    __tablename__ = "price_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku", name="fk_price_changes_sku"), index=True)
    price_cents: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Promotion(Base):
    __tablename__ = "promotions"

    promo_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    title: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(32), default="")  # '' = every category
    starts: Mapped[date] = mapped_column(Date)
    ends: Mapped[date] = mapped_column(Date)


class Order(Base):
    __tablename__ = "orders"

    order_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id", name="fk_orders_customer"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    receiver_name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(20), index=True)  # the order's contact phone (verification)
    address: Mapped[str] = mapped_column(String(255))
    delivery_slot: Mapped[str] = mapped_column(String(64), default="")
    total_cents: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    cancel_reason: Mapped[str] = mapped_column(String(255), default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    items: Mapped[list[OrderItemRow]] = relationship(order_by="OrderItemRow.id", lazy="selectin")
    customer: Mapped[Customer] = relationship(lazy="joined")


class OrderItemRow(Base):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.order_id", name="fk_order_items_order"), index=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku", name="fk_order_items_sku"))
    name: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(32), default="")
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    protected_cents: Mapped[int] = mapped_column(Integer, default=0)  # per unit already refunded by 保价


class Payment(Base):
    __tablename__ = "payments"

    payment_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.order_id", name="fk_payments_order"), index=True)
    method: Mapped[str] = mapped_column(String(16))  # wechat | alipay | card | balance
    amount_cents: Mapped[int] = mapped_column(Integer)
    paid_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ShipmentRow(Base):
    __tablename__ = "shipments"
    __table_args__ = (UniqueConstraint("tracking_no", name="uq_shipments_tracking_no"),)

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.order_id", name="fk_shipments_order"), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(32))
    tracking_no: Mapped[str] = mapped_column(String(32))
    shipped_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    promised_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    eta: Mapped[date | None] = mapped_column(Date, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    events: Mapped[list[TrackingEventRow]] = relationship(order_by="TrackingEventRow.time", lazy="selectin")


class TrackingEventRow(Base):
    __tablename__ = "tracking_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("shipments.order_id", name="fk_tracking_events_shipment"),
                                          index=True)
    time: Mapped[datetime] = mapped_column(UtcDateTime)
    location: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(255))


class ReturnRow(Base):
    """A return or exchange (RMA). ``open_order_id`` is the order id while the RMA is open and NULL after:
    its unique constraint makes a second open RMA for one order impossible, even under concurrency."""

    __tablename__ = "returns"
    __table_args__ = (UniqueConstraint("open_order_id", name="uq_returns_open_order_id"),)

    rma_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.order_id", name="fk_returns_order"), index=True)
    open_order_id: Mapped[str | None] = mapped_column(String(24), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # return | exchange
    reason: Mapped[str] = mapped_column(String(255))
    reason_code: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(16))
    pickup_slot: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RefundRow(Base):
    __tablename__ = "refunds"

    refund_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.order_id", name="fk_refunds_order"), index=True)
    rma_id: Mapped[str | None] = mapped_column(ForeignKey("returns.rma_id", name="fk_refunds_rma"), nullable=True)
    kind: Mapped[str] = mapped_column(String(24))  # return | cancel | price_protection
    amount_cents: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(16))  # original | balance
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expected_by: Mapped[date | None] = mapped_column(Date, nullable=True)


class InvoiceRow(Base):
    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("order_id", name="uq_invoices_order_id"),)

    invoice_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.order_id", name="fk_invoices_order"))
    title: Mapped[str] = mapped_column(String(128))
    tax_id: Mapped[str] = mapped_column(String(32), default="")
    email: Mapped[str] = mapped_column(String(128), default="")
    status: Mapped[str] = mapped_column(String(16))  # issued | pending
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TicketRow(Base):
    __tablename__ = "tickets"

    ticket_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str] = mapped_column(String(20), default="")
    order_id: Mapped[str | None] = mapped_column(String(24), nullable=True, index=True)
    context: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class IdempotencyKey(Base):
    """One row per processed write: the same key returns the same result (``result_ref``)."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    operation: Mapped[str] = mapped_column(String(48))
    request_hash: Mapped[str] = mapped_column(String(64))
    result_ref: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditLog(Base):
    """What the bot changed: one row per write, personal data masked in ``detail``."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(48))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(24), nullable=True, index=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


SHOP_TABLES = [
    AuditLog, IdempotencyKey, TicketRow, InvoiceRow, RefundRow, ReturnRow, TrackingEventRow, ShipmentRow,
    Payment, OrderItemRow, Order, Promotion, PriceChange, Product, Customer,
]
"""Shop tables in safe delete order (children first)."""

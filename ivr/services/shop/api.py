"""The OMS boundary: what the dialogue may ask of a shop's order system.

The embedded SQLite/PostgreSQL store implements it (``ivr.services.shop.store``); a shop with its own order
system implements it over HTTP (``ivr.services.shop.http_oms``). The dialogue only ever sees these plain,
frozen dataclasses. Money is integer cents (fen); times are timezone-aware UTC datetimes; dates are local.

Writes take an ``idempotency_key``: calling again with the same key returns the first result and changes
nothing (the same return request twice creates one RMA). Each write is one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Protocol, runtime_checkable

OrderStatus = Literal["unpaid", "paid", "shipped", "in_transit", "delivered", "returned", "refunded", "cancelled"]


class OmsError(Exception):
    """Base of errors the dialogue handles (never shown raw to a caller)."""


class NotFound(OmsError):
    """No such order / ticket / customer."""


class NotAllowed(OmsError):
    """The action is not allowed in the order's state. ``code`` is stable, e.g. 'already_shipped',
    'return_window_closed', 'not_delivered', 'already_cancelled', 'already_refunded'."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code


class OmsUnavailable(OmsError):
    """The order system cannot be reached; the dialogue apologises and offers a human/callback."""


@dataclass(frozen=True, slots=True)
class OrderItem:
    sku: str
    name: str
    quantity: int
    unit_price_cents: int
    category: str = ""


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    time: datetime
    location: str
    description: str


@dataclass(frozen=True, slots=True)
class Shipment:
    carrier: str
    tracking_no: str
    shipped_at: datetime | None
    promised_date: date | None
    eta: date | None
    delivered_at: datetime | None
    events: tuple[TrackingEvent, ...] = ()

    @property
    def latest(self) -> TrackingEvent | None:
        return max(self.events, key=lambda e: e.time) if self.events else None


@dataclass(frozen=True, slots=True)
class Refund:
    refund_id: str
    amount_cents: int
    method: str  # 'original' (原路退回), 'balance', ...
    status: Literal["pending", "processing", "completed", "rejected"]
    created_at: datetime
    expected_by: date | None


@dataclass(frozen=True, slots=True)
class ReturnRequest:
    rma_id: str
    order_id: str
    kind: Literal["return", "exchange"]
    reason: str
    status: Literal["requested", "approved", "picked_up", "received", "closed", "rejected"]
    pickup_slot: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Invoice:
    invoice_id: str
    title: str
    tax_id: str
    email: str
    status: Literal["issued", "pending", "none"]


@dataclass(frozen=True, slots=True)
class Ticket:
    ticket_id: str
    kind: Literal["complaint", "callback", "inquiry"]
    summary: str
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """An order as the bot may speak about it (after verification)."""

    order_id: str
    customer_id: str
    customer_name: str
    phone: str
    status: OrderStatus
    created_at: datetime
    paid_at: datetime | None
    total_cents: int
    items: tuple[OrderItem, ...]
    address: str
    delivery_slot: str = ""
    shipment: Shipment | None = None
    refunds: tuple[Refund, ...] = ()
    returns: tuple[ReturnRequest, ...] = ()
    invoice: Invoice | None = None
    vip: bool = False
    extra: dict = field(default_factory=dict)


@runtime_checkable
class ShopService(Protocol):
    """Everything the dialogue needs from the shop. Reads return None/[] when nothing matches."""

    def get_order(self, order_id: str) -> OrderSnapshot | None: ...

    def orders_for_phone(self, phone: str, limit: int = 5) -> list[OrderSnapshot]:
        """Most recent first."""
        ...

    def create_return(self, order_id: str, kind: Literal["return", "exchange"], reason: str, pickup_slot: str,
                      idempotency_key: str) -> ReturnRequest:
        """Raises NotAllowed('return_window_closed' | 'not_delivered' | ...)."""
        ...

    def cancel_order(self, order_id: str, reason: str, idempotency_key: str) -> OrderSnapshot:
        """Only before shipment; raises NotAllowed('already_shipped' | 'already_cancelled')."""
        ...

    def change_address(self, order_id: str, new_address: str, idempotency_key: str) -> OrderSnapshot: ...

    def change_delivery_slot(self, order_id: str, slot: str, idempotency_key: str) -> OrderSnapshot: ...

    def resend_invoice(self, order_id: str, email: str | None, idempotency_key: str) -> Invoice: ...

    def change_invoice_title(self, order_id: str, title: str, tax_id: str, idempotency_key: str) -> Invoice: ...

    def request_price_protection(self, order_id: str, idempotency_key: str) -> Refund | None:
        """保价: refund the difference if the price dropped within the window; None when there is no difference."""
        ...

    def create_ticket(self, kind: Literal["complaint", "callback", "inquiry"], summary: str, phone: str,
                      order_id: str | None, context: dict, idempotency_key: str) -> Ticket: ...

    def current_promotions(self) -> list[dict]:
        """Active promotions: [{'title', 'detail', 'ends'}]."""
        ...


@runtime_checkable
class OrderListing(Protocol):
    """A shop that can list its order ids (the SQL store; an OMS over HTTP cannot)."""

    def order_ids(self, limit: int = 3000) -> list[str]:
        """The first ``limit`` order ids, in id order."""
        ...

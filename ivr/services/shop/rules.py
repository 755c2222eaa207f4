"""Business rules of the embedded shop: pure functions over dates and states, raising ``NotAllowed`` codes.

Stable ``NotAllowed.code`` values (the dialogue maps each to a polite explanation):
  not_delivered, already_shipped, already_cancelled, already_returned, already_refunded, return_exists,
  return_window_closed, category_not_returnable, not_paid, price_protect_not_supported,
  price_protect_window_closed, no_invoice, invalid_address, invalid_slot, invalid_email, invalid_tax_id,
  invalid_request, idempotency_conflict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from ivr.services.shop.api import NotAllowed

# Return reason codes. ``create_return(reason=...)`` takes ``<code>`` or ``<code>:<free text>``; a reason
# whose code is in QUALITY_REASONS gets the longer quality window and is allowed for every category.
QUALITY_REASONS = frozenset({"quality", "damaged", "defective", "wrong_item", "missing_parts"})
NO_REASON_CODES = frozenset({"no_reason", "changed_mind", "size", "not_as_expected", "other"})

BEFORE_SHIPMENT = frozenset({"unpaid", "paid"})
IN_DELIVERY = frozenset({"shipped", "in_transit"})


@dataclass(frozen=True, slots=True)
class ShopPolicy:
    """Configurable windows of the shop (days counted on the shop's local calendar)."""

    return_days: int = 7  # 七天无理由退货
    quality_return_days: int = 15  # quality problems: return or exchange
    timezone: str = "Asia/Shanghai"
    refund_days: int = 3  # refunds to the original method arrive within this many days

    def local_date(self, t: datetime) -> date:
        return t.astimezone(ZoneInfo(self.timezone)).date()


def reason_code(reason: str) -> str:
    """'quality:屏幕有坏点' -> 'quality'; unknown free text -> 'other'."""
    code = reason.split(":", 1)[0].strip().lower()
    return code if code in QUALITY_REASONS or code in NO_REASON_CODES else "other"


def return_deadline(policy: ShopPolicy, delivered_at: datetime | None, quality: bool) -> date | None:
    if delivered_at is None:
        return None
    days = policy.quality_return_days if quality else policy.return_days
    return policy.local_date(delivered_at) + timedelta(days=days)


def check_return(policy: ShopPolicy, status: str, delivered_at: datetime | None, reason: str, today: date,
                 all_items_seven_day: bool, has_open_rma: bool) -> None:
    """Raise NotAllowed unless a return/exchange may be created now."""
    _check_not_final(status)
    if status in BEFORE_SHIPMENT or status in IN_DELIVERY or delivered_at is None:
        raise NotAllowed("not_delivered", "the order has not been delivered yet")
    if has_open_rma:
        raise NotAllowed("return_exists", "an open return/exchange exists for this order")
    quality = reason_code(reason) in QUALITY_REASONS
    if not quality and not all_items_seven_day:
        raise NotAllowed("category_not_returnable", "this category is excluded from no-reason returns")
    deadline = return_deadline(policy, delivered_at, quality)
    if deadline is not None and today > deadline:
        raise NotAllowed("return_window_closed", f"the return window ended on {deadline.isoformat()}")


def check_before_shipment(status: str) -> None:
    """Cancel, address change and slot change are only possible before the parcel leaves."""
    if status == "cancelled":
        raise NotAllowed("already_cancelled", "the order is cancelled")
    if status == "refunded":
        raise NotAllowed("already_refunded", "the order is refunded")
    if status == "returned":
        raise NotAllowed("already_returned", "the order was returned")
    if status not in BEFORE_SHIPMENT:
        raise NotAllowed("already_shipped", "the order has already shipped")


def check_price_protection(status: str, paid_at: datetime | None) -> None:
    _check_not_final(status)
    if status == "unpaid" or paid_at is None:
        raise NotAllowed("not_paid", "the order is not paid")


def _check_not_final(status: str) -> None:
    if status == "cancelled":
        raise NotAllowed("already_cancelled", "the order is cancelled")
    if status == "refunded":
        raise NotAllowed("already_refunded", "the order is refunded")
    if status == "returned":
        raise NotAllowed("already_returned", "the order was returned")


_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_TAX_ID_RE = re.compile(r"^[0-9A-Z]{15}$|^[0-9A-Z]{18}$|^[0-9A-Z]{20}$")


def check_email(email: str) -> str:
    email = email.strip()
    if not _EMAIL_RE.match(email):
        raise NotAllowed("invalid_email", "not an e-mail address")
    return email


def check_tax_id(tax_id: str) -> str:
    """Company tax ids (统一社会信用代码) are 18 characters (older ones 15/20); '' for a personal invoice."""
    tax_id = tax_id.strip().upper()
    if tax_id and not _TAX_ID_RE.match(tax_id):
        raise NotAllowed("invalid_tax_id", "a tax id has 15, 18 or 20 letters/digits")
    return tax_id


def check_text(value: str, code: str, min_len: int, max_len: int) -> str:
    value = " ".join(value.split())
    if not (min_len <= len(value) <= max_len):
        raise NotAllowed(code, f"expected {min_len}..{max_len} characters")
    return value


def utc_now() -> datetime:
    return datetime.now(UTC)

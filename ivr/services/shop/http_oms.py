"""``HttpShop``: ShopService over a shop's own order system speaking the REST shape of docs/oms.md.

Sync httpx client with timeouts (the dialogue calls shop methods off the event loop). Connection failures are
retried by the transport (every write carries an ``Idempotency-Key`` header, so a retry is safe). Errors map to
the api exceptions: 404 -> NotFound, 409 -> NotAllowed(code), 400/422 -> NotAllowed('invalid_request'),
anything else (timeouts, 5xx, auth, bad JSON) -> OmsUnavailable.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
from pydantic import ValidationError

from ivr.services.shop.api import (
    Invoice,
    NotAllowed,
    NotFound,
    OmsUnavailable,
    OrderSnapshot,
    Refund,
    ReturnRequest,
    Ticket,
)
from ivr.services.shop.wire import from_json


class HttpShop:
    """A ShopService backed by ``base_url`` (e.g. 'https://oms.example.com/ivr/v1')."""

    def __init__(self, base_url: str, *, token: str = "", timeout_s: float = 3.0, retries: int = 2,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Accept": "application/json", "User-Agent": "ivr-oms-client/1"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
            transport=transport or httpx.HTTPTransport(retries=retries),
        )

    def close(self) -> None:
        self._client.close()

    # ---- reads
    def get_order(self, order_id: str) -> OrderSnapshot | None:
        try:
            return _parse(self._call("GET", f"/orders/{_seg(order_id)}"), OrderSnapshot)
        except NotFound:
            return None

    def orders_for_phone(self, phone: str, limit: int = 5) -> list[OrderSnapshot]:
        data = self._call("GET", "/orders", params={"phone": phone, "limit": limit})
        return _parse(data.get("orders", []), list[OrderSnapshot]) if isinstance(data, dict) else []

    def current_promotions(self) -> list[dict]:
        data = self._call("GET", "/promotions")
        return _parse(data.get("promotions", []) if isinstance(data, dict) else data, list[dict])

    # ---- writes
    def create_return(self, order_id: str, kind: Literal["return", "exchange"], reason: str, pickup_slot: str,
                      idempotency_key: str) -> ReturnRequest:
        body = {"kind": kind, "reason": reason, "pickup_slot": pickup_slot}
        return _parse(self._post(f"/orders/{_seg(order_id)}/returns", body, idempotency_key), ReturnRequest)

    def cancel_order(self, order_id: str, reason: str, idempotency_key: str) -> OrderSnapshot:
        return _parse(self._post(f"/orders/{_seg(order_id)}/cancel", {"reason": reason}, idempotency_key),
                         OrderSnapshot)

    def change_address(self, order_id: str, new_address: str, idempotency_key: str) -> OrderSnapshot:
        return _parse(self._post(f"/orders/{_seg(order_id)}/address", {"address": new_address},
                                    idempotency_key), OrderSnapshot)

    def change_delivery_slot(self, order_id: str, slot: str, idempotency_key: str) -> OrderSnapshot:
        return _parse(self._post(f"/orders/{_seg(order_id)}/delivery-slot", {"slot": slot}, idempotency_key),
                         OrderSnapshot)

    def resend_invoice(self, order_id: str, email: str | None, idempotency_key: str) -> Invoice:
        return _parse(self._post(f"/orders/{_seg(order_id)}/invoice/resend", {"email": email}, idempotency_key),
                         Invoice)

    def change_invoice_title(self, order_id: str, title: str, tax_id: str, idempotency_key: str) -> Invoice:
        return _parse(self._post(f"/orders/{_seg(order_id)}/invoice/title", {"title": title, "tax_id": tax_id},
                                    idempotency_key), Invoice)

    def request_price_protection(self, order_id: str, idempotency_key: str) -> Refund | None:
        data = self._post(f"/orders/{_seg(order_id)}/price-protection", {}, idempotency_key)
        return _parse(data.get("refund") if isinstance(data, dict) else None, Refund | None)

    def create_ticket(self, kind: Literal["complaint", "callback", "inquiry"], summary: str, phone: str,
                      order_id: str | None, context: dict, idempotency_key: str) -> Ticket:
        body = {"kind": kind, "summary": summary, "phone": phone, "order_id": order_id, "context": context}
        return _parse(self._post("/tickets", body, idempotency_key), Ticket)

    # ---- plumbing
    def _post(self, path: str, body: dict, idempotency_key: str) -> Any:
        if not idempotency_key:
            raise NotAllowed("invalid_request", "an idempotency key is required")
        return self._call("POST", path, json=body, headers={"Idempotency-Key": idempotency_key})

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self._client.request(method, path, **kw)
        except httpx.HTTPError as e:  # timeouts, refused connections, protocol errors
            raise OmsUnavailable(f"order system unreachable: {type(e).__name__}") from e
        try:
            data = resp.json() if resp.content else {}
        except ValueError:
            data = None
        if resp.status_code == 404:
            raise NotFound(_message(data) or path)
        if resp.status_code == 409:
            code = data.get("code") if isinstance(data, dict) else None
            raise NotAllowed(str(code or "not_allowed"), _message(data))
        if resp.status_code in (400, 422):
            raise NotAllowed("invalid_request", _message(data) or f"HTTP {resp.status_code}")
        if resp.status_code >= 300 or data is None:
            raise OmsUnavailable(f"order system answered HTTP {resp.status_code}")
        return data


def _seg(order_id: str) -> str:
    """Order ids go into the path; anything but digits/letters is dropped (no path tricks)."""
    seg = "".join(c for c in (order_id or "") if c.isalnum())
    if not seg:
        raise NotFound("empty order id")
    return seg


def _message(data: Any) -> str:
    if isinstance(data, dict):
        msg = data.get("message") or data.get("detail") or ""
        return msg if isinstance(msg, str) else str(msg)
    return ""


def _parse(data: Any, tp: Any) -> Any:
    """A payload of the wrong shape is the order system's fault: report it as unavailable, not as a crash."""
    try:
        return from_json(data, tp)
    except ValidationError as e:
        raise OmsUnavailable(f"order system sent an unexpected payload ({e.error_count()} errors)") from e

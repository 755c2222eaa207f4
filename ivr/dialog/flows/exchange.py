"""Exchange: the return flow with kind 'exchange' (same eligibility, reason, pickup, confirmation, read-back)."""

from __future__ import annotations

from ivr.dialog.flows.return_request import ReturnFlow


class ExchangeFlow(ReturnFlow):
    intent = "exchange_request"
    kind = "exchange"

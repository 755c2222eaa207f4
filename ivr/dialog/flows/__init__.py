"""Task flows, one module per task, registered by intent name."""

from __future__ import annotations

from ivr.dialog.flows.base import Flow
from ivr.dialog.flows.cancel_order import CancelOrderFlow
from ivr.dialog.flows.change_address import ChangeAddressFlow
from ivr.dialog.flows.complaint import ComplaintFlow
from ivr.dialog.flows.exchange import ExchangeFlow
from ivr.dialog.flows.human_agent import HumanAgentFlow
from ivr.dialog.flows.invoice import InvoiceFlow
from ivr.dialog.flows.logistics import LogisticsFlow
from ivr.dialog.flows.order_status import OrderStatusFlow
from ivr.dialog.flows.price_promotion import PricePromotionFlow
from ivr.dialog.flows.product_question import ProductQuestionFlow
from ivr.dialog.flows.refund_status import RefundStatusFlow
from ivr.dialog.flows.return_request import ReturnFlow

FLOWS: dict[str, Flow] = {f.intent: f for f in (
    OrderStatusFlow(), LogisticsFlow(), ReturnFlow(), ExchangeFlow(), RefundStatusFlow(), CancelOrderFlow(),
    ChangeAddressFlow(), InvoiceFlow(), PricePromotionFlow(), ProductQuestionFlow(), ComplaintFlow(),
    HumanAgentFlow(),
)}

__all__ = ["FLOWS", "Flow"]

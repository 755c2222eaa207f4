"""Logistics: carrier, latest tracking event, ETA, and an apology when the parcel is later than promised."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.dialog.flows.base import BEFORE_SHIPMENT, Flow
from ivr.dialog.flows.order_status import status_text

if TYPE_CHECKING:
    from ivr.dialog.host import FlowHost


class LogisticsFlow(Flow):
    intent = "logistics"
    skill = "logistics"
    prefer = ("in_transit", "shipped", "delivered")

    def answer(self, m: FlowHost) -> None:
        o = m.ctx.order
        sh = o.shipment
        m.act("logistics_read")
        if o.status in BEFORE_SHIPMENT:
            m.say("logistics.not_shipped")
            return m.finish()
        if sh is None:
            if o.status in ("cancelled", "refunded"):
                m.say("logistics.not_applicable", status=status_text(m, o))
            else:
                m.say("logistics.no_tracking")
            return m.finish()
        if sh.delivered_at or o.status == "delivered":
            if sh.delivered_at:
                m.say("logistics.delivered", date=m.date(sh.delivered_at))
            else:
                m.say("status.delivered_nodate")
            return m.finish()
        latest = sh.latest
        if latest is not None:
            m.say("logistics.latest", carrier=sh.carrier, date=m.date(latest.time),
                  description=latest.description or latest.location)
        else:
            m.say("logistics.no_tracking")
        if sh.eta:
            m.say("logistics.eta", date=m.date(sh.eta))
        promised = sh.promised_date
        if promised and ((sh.eta and sh.eta > promised) or m.today() > promised):
            m.say("logistics.delayed", promised=m.date(promised))
            m.act("delay_apology")
        m.finish()

"""Agent assist: the next step of the flow the caller's latest request matches, and which one-click shop actions
fit the order on the card (see :mod:`ivr.web.assist` and :mod:`ivr.web.assist_actions`).

The intent comes from the bot's own NLU (:func:`ivr.dialog.nlu.get_nlu`) on the newest caller line that asks for
a task; the step text follows the bot's flow for that intent (``ivr/dialog/flows/``) and the order's facts, so the
agent is told what the bot would do next, e.g. for a return inside the window: ask the reason, book the pickup,
create the return.
"""

from __future__ import annotations

from typing import Any

# intent -> (flow label, the step when nothing order-specific applies)
STEPS: dict[str, tuple[str, str]] = {
    "order_status": ("查订单", "告知订单状态和预计送达时间（见订单卡片）。"),
    "logistics": ("查物流", "告知承运商、运单号和最新物流动态；超过承诺时间可致歉并登记催件。"),
    "return_request": ("退货", "核实订单已签收且在退货期内 → 问退货原因 → 约上门取件时间 → 确认后创建退货。"),
    "exchange_request": ("换货", "核实订单已签收且在退货期内 → 问换货原因 → 约上门取件时间 → 确认后创建换货。"),
    "refund_status": ("查退款", "告知退款单状态和预计到账时间（原路退回，1-3个工作日）。"),
    "cancel_order": ("取消订单", "未发货可直接取消，已付款的原路退款；已发货请引导拒收或签收后退货。"),
    "change_address": ("改地址", "仅未发货订单可改地址：核对新地址后提交。"),
    "invoice": ("发票", "核对发票抬头和接收邮箱 → 重发电子发票。"),
    "price_promotion": ("价保/优惠", "签收后7天内降价可申请价保，差价原路退回。"),
    "product_question": ("商品咨询", "按商品详情页参数答复；不确定的记录后回电。"),
    "complaint": ("投诉", "先致歉安抚，记录问题要点，登记投诉工单并告知处理时限。"),
}
ACTION_LABELS = {"create_return": "创建退货", "resend_invoice": "重发发票"}


def order_actions(facts: dict[str, Any] | None) -> list[str]:
    """The one-click actions the order on the card allows now (the shop re-checks its rules on the write)."""
    if not facts:
        return []
    out = []
    windows = facts.get("return_windows") or {}
    if not facts.get("open_return") and any(w.get("open") for w in windows.values()):
        out.append("create_return")
    if facts.get("invoice_status") == "issued":
        out.append("resend_invoice")
    return out


def _order_step(intent: str, facts: dict[str, Any] | None) -> str | None:
    """The step text that depends on the order's facts, or None for the generic step."""
    if not facts:
        return None
    windows = facts.get("return_windows") or {}
    if intent in ("return_request", "exchange_request"):
        what = "退货" if intent == "return_request" else "换货"
        if facts.get("open_return"):
            return f"该订单已有售后单 {facts['open_return']}：告知处理进度，不要重复创建。"
        if not windows:
            return f"订单尚未签收，暂不能{what}：签收后再申请，或引导拒收。"
        nr, q = windows.get("no_reason", {}), windows.get("quality", {})
        if nr.get("open"):
            return (f"七天无理由可办理（截至{nr['until']}）→ 问{what}原因 → 约上门取件时间 → "
                    f"点击“创建退货”并向客户确认。")
        if q.get("open"):
            return f"已过七天无理由期，仅质量问题可{what}（截至{q['until']}）：确认质量问题后再创建。"
        return f"退货期已过（质量问题截至{q.get('until', '')}）：不能{what}，可登记投诉或转专员。"
    if intent == "invoice":
        if facts.get("invoice_status") == "issued":
            return "发票已开具：核对接收邮箱 → 点击“重发发票”。"
        return "该订单发票尚未开具：告知开票进度（签收后开具）。"
    return None


def latest_request(nlu: Any, transcript: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(intent, text) of the newest caller line whose intent is a task (the bot's own NLU), else None."""
    for line in reversed(transcript):
        if line.get("who") != "caller":
            continue
        text = str(line.get("text", ""))
        intent = line.get("intent")
        if intent not in STEPS and text and not text.startswith("#dtmf"):
            intent = nlu.parse(text).intent
        if intent in STEPS:
            return str(intent), text
    return None


def flow_suggestion(nlu: Any, transcript: list[dict[str, Any]],
                    facts: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``flow`` suggestion: next step of the flow matching the caller's newest request (blocking: NLU)."""
    found = latest_request(nlu, transcript)
    if found is None:
        return None
    intent, heard = found
    label, generic = STEPS[intent]
    actions = [a for a in order_actions(facts)
               if (a == "create_return") == (intent in ("return_request", "exchange_request"))
               and (a == "resend_invoice") == (intent == "invoice")]
    return {"id": f"flow:{intent}", "kind": "flow", "title": f"下一步：{label}",
            "text": _order_step(intent, facts) or generic, "intent": intent, "heard": heard, "actions": actions}

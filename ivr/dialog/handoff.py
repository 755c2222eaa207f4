"""Structured hand-off for a human agent: who is calling (masked), what was verified and asked, the order in
play, the caller's mood, a one-line summary in the call's language, and the transcript (masked)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ivr.privacy import mask_address, mask_name, mask_phone, mask_secret, mask_text

if TYPE_CHECKING:
    from ivr.dialog.host import FlowHost
    from ivr.services.shop.api import OrderSnapshot


def order_snapshot(order: OrderSnapshot | None) -> dict[str, Any] | None:
    """The order as an agent needs it at a glance (personal data masked)."""
    if order is None:
        return None
    sh = order.shipment
    latest = sh.latest if sh else None
    return {
        "order_id": order.order_id,
        "status": order.status,
        "total_cents": order.total_cents,
        "items": [{"name": i.name, "quantity": i.quantity} for i in order.items],
        "customer": mask_name(order.customer_name),
        "phone": mask_phone(order.phone),
        "address": mask_address(order.address),
        "vip": order.vip,
        "carrier": sh.carrier if sh else None,
        "tracking_no": sh.tracking_no if sh else None,
        "promised_date": sh.promised_date.isoformat() if sh and sh.promised_date else None,
        "eta": sh.eta.isoformat() if sh and sh.eta else None,
        "latest_event": latest.description if latest else None,
        "returns": [{"rma_id": r.rma_id, "kind": r.kind, "status": r.status} for r in order.returns],
        "refunds": [{"refund_id": r.refund_id, "status": r.status, "amount_cents": r.amount_cents}
                    for r in order.refunds],
    }


TEXT_CHANNELS = ("webchat", "chat", "messaging")  # typed conversations: no caller number to show


def build(m: FlowHost, reason: str) -> dict[str, Any]:
    """The hand-off dict (JSON-serialisable)."""
    ctx = m.ctx
    order = ctx.order or ctx.pending_order
    v = ctx.verification
    intents = [i for i in dict.fromkeys(ctx.intents)]
    mood = ctx.mood_level if ctx.mood_level in ("angry", "frustrated") else "calm"
    none = m.pack.prompt("handoff.none")

    def label(prefix: str, key: str) -> str:
        pid = f"{prefix}.{key}"
        return m.pack.prompt(pid) if pid in m.pack.prompts else key

    summary = m.pack.prompt(
        "handoff.summary_text" if ctx.channel in TEXT_CHANNELS else "handoff.summary",
        caller=mask_phone(ctx.caller_id) or label("handoff", "no_caller_id"),
        intents=m.pack.prompt("list.sep").join(label("intent", i) for i in intents) or none,
        order=order.order_id if order else none,
        verified=m.pack.prompt("handoff.verified" if v.verified else "handoff.unverified"),
        mood=label("mood", mood),
        reason=label("xfer", reason),
    )
    transcript = []
    for t in m.turns:
        if t.get("who") == "caller":
            text = t.get("text") or (f"#dtmf {t['dtmf']}" if t.get("dtmf") else "")
            # the answer to the verification question is a credential: no digit of it, in any script
            text = mask_secret(text) if t.get("state") == "verify" else mask_text(text)
            transcript.append({"who": "caller", "text": text, "intent": t.get("intent")})
        elif t.get("who") == "bot":
            transcript.append({"who": "bot", "text": mask_text(t.get("text", "")),
                               "interrupted": bool(t.get("interrupted"))})
    return {
        "call_id": ctx.call_id,
        "channel": ctx.channel,
        "caller": mask_phone(ctx.caller_id),
        "reason": reason,
        "verification": {"verified": v.verified, "method": v.method, "failed_attempts": v.attempts,
                         "locked": v.failed, "self_service_locked": bool(v.locked), "lock": v.locked,
                         "caller_id_trusted": ctx.caller_id_trusted},
        "intents": intents,
        "slots": {k: _slot(k, v_) for k, v_ in ctx.slots.items() if k != "phone_tail"},
        "order": order_snapshot(ctx.order) if ctx.order is not None else  # only the order the caller proved
        ({"order_id": order.order_id, "verified": False} if order else None),
        "sentiment": {"level": mood, "score": round(ctx.mood, 3)},
        "summary": summary,
        "labels": {"intents": [label("intent", i) for i in intents], "reason": label("xfer", reason),
                   "mood": label("mood", mood)},
        "transcript": transcript,
        "state": ctx.state,
    }


def _slot(key: str, value: object) -> object:
    if not isinstance(value, str):
        return value
    if "phone" in key:
        return mask_phone(value)
    if "address" in key:
        return mask_address(value)
    if "name" in key and not key.endswith("_id"):
        return mask_name(value)
    return mask_text(value)

"""Agent assist: the next step of the flow the caller's latest request matches, and which one-click shop actions
fit the order on the card (see :mod:`ivr.web.assist` and :mod:`ivr.web.assist_actions`).

The intent comes from the bot's own NLU (:func:`ivr.dialog.nlu.get_nlu`) on the newest caller line that asks for
a task; the step text follows the bot's flow for that intent (``ivr/dialog/flows/``) and the order's facts, so the
agent is told what the bot would do next, e.g. for a return inside the window: ask the reason, book the pickup,
create the return.
"""

from __future__ import annotations

from typing import Any

from ivr.config import Settings, get_settings
from ivr.lang import LanguagePack, get_pack

# the intents that are a task with a flow (their label and generic step: ``flow.<intent>`` and
# ``flow.<intent>.step`` in the language pack's desk.yaml)
STEPS: tuple[str, ...] = ("order_status", "logistics", "return_request", "exchange_request", "refund_status",
                          "cancel_order", "change_address", "invoice", "price_promotion", "product_question",
                          "complaint")


def desk_pack(settings: Settings | None = None) -> LanguagePack:
    """The language pack of the desk's texts: the configured language (a bridge does not carry the call's)."""
    return get_pack((settings or get_settings()).language)


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


def _order_step(intent: str, facts: dict[str, Any] | None, pack: LanguagePack) -> str | None:
    """The step text that depends on the order's facts, or None for the generic step."""
    if not facts:
        return None
    t = pack.desk_text
    windows = facts.get("return_windows") or {}
    if intent in ("return_request", "exchange_request"):
        what = t(f"flow.{intent}")
        if facts.get("open_return"):
            return t("flow.open_return", rma_id=facts["open_return"])
        if not windows:
            return t("flow.not_delivered", what=what)
        nr, q = windows.get("no_reason", {}), windows.get("quality", {})
        if nr.get("open"):
            return t("flow.no_reason_open", until=nr["until"], what=what)
        if q.get("open"):
            return t("flow.quality_open", until=q["until"], what=what)
        return t("flow.window_closed", until=q.get("until", ""), what=what)
    if intent == "invoice":
        return t("flow.invoice_issued" if facts.get("invoice_status") == "issued" else "flow.invoice_pending")
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


def flow_suggestion(nlu: Any, transcript: list[dict[str, Any]], facts: dict[str, Any] | None,
                    pack: LanguagePack | None = None) -> dict[str, Any] | None:
    """The ``flow`` suggestion: next step of the flow matching the caller's newest request (blocking: NLU). Texts
    from ``pack`` (default: the configured language's)."""
    found = latest_request(nlu, transcript)
    if found is None:
        return None
    pack = pack or desk_pack()
    intent, heard = found
    actions = [a for a in order_actions(facts)
               if (a == "create_return") == (intent in ("return_request", "exchange_request"))
               and (a == "resend_invoice") == (intent == "invoice")]
    t = pack.desk_text
    return {"id": f"flow:{intent}", "kind": "flow", "title": t("flow.title", label=t(f"flow.{intent}")),
            "text": _order_step(intent, facts, pack) or t(f"flow.{intent}.step"), "intent": intent, "heard": heard,
            "actions": actions}

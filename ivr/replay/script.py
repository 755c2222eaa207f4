"""Scripted conversations as data: run a YAML script against the dialogue manager and check expectations.

A script::

    name: return, happy path
    orders: {o: delivered_returnable}     # name -> order query (see ORDER_QUERIES) or a literal order id
    caller_id: "{o.phone}"               # optional; templates: {o.order_id}, {o.order_id:spoken}, {o.phone},
    caller_id_trusted: true              # optional: the caller ID comes from a trusted peer (default: a hint)
                                         #   {o.phone_tail}, {o.phone_tail:spoken}, {o.wrong_tail}, {o.product}
    asr: true                            # false = keypad-only call
    start: {state: main_menu}            # expectations on the greeting
    turns:
      - say: <what the caller says>       # or dtmf: "{o.order_id}#", or silence: true, or hangup: caller,
        expect:                          #   or played: {segments: 1, fraction: 0.2} (barge-in report)
          intent: return_request
          state: ask_order
          actions: [return_created]      # all must be present
          not_actions: [transfer]
          reply_contains: [<text>]        # str or list; templates allowed
          reply_not_contains: <text>
          end_call: false
          transfer: {priority: 2}        # or true / false
    end: {outcome: resolved, csat: 5, feedback: 1, writes: {returns: 1}}

Orders are found by query against the seeded store, so scripts stay valid for any seed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from ivr.dialog.manager import DialogManager
from ivr.dialog.types import BotReply
from ivr.lang import get_pack
from ivr.services.shop.api import OrderListing, OrderSnapshot, ShopService


class ScriptError(ValueError):
    """The script file itself is invalid (bad YAML, unknown keys, unresolvable order query)."""


_TZ = ZoneInfo("Asia/Shanghai")  # the shop calendar (ivr.dialog.policy.DialogPolicy.timezone)
OPEN_RMA = ("requested", "approved", "picked_up", "received")


def _delivered_days(o: OrderSnapshot, today: date) -> int | None:
    sh = o.shipment
    if o.status != "delivered" or not sh or not sh.delivered_at:
        return None
    return (today - sh.delivered_at.astimezone(_TZ).date()).days


def _open_rma(o: OrderSnapshot) -> bool:
    return any(r.status in OPEN_RMA for r in o.returns)


def _late(o: OrderSnapshot, today: date) -> bool:
    sh = o.shipment
    return bool(sh and sh.promised_date and (today > sh.promised_date or (sh.eta and sh.eta > sh.promised_date)))


def _seven_day(o: OrderSnapshot) -> bool:
    return bool((o.extra or {}).get("seven_day_return", True))


ORDER_QUERIES: dict[str, Callable[[OrderSnapshot, date], bool]] = {
    "delivered_returnable": lambda o, t: (d := _delivered_days(o, t)) is not None and 0 <= d <= 5
    and not _open_rma(o) and _seven_day(o) and not o.refunds,
    "delivered_quality_only": lambda o, t: (d := _delivered_days(o, t)) is not None and 8 <= d <= 14
    and not _open_rma(o) and not o.refunds,
    "delivered_old": lambda o, t: (d := _delivered_days(o, t)) is not None and d > 16,
    "not_seven_day": lambda o, t: (d := _delivered_days(o, t)) is not None and d <= 5 and not _seven_day(o)
    and not _open_rma(o),
    "paid_not_shipped": lambda o, t: o.status == "paid",
    "unpaid": lambda o, t: o.status == "unpaid",
    "in_transit_late": lambda o, t: o.status in ("shipped", "in_transit") and _late(o, t)
    and o.shipment is not None and o.shipment.latest is not None,
    "in_transit_on_time": lambda o, t: o.status in ("shipped", "in_transit") and not _late(o, t)
    and o.shipment is not None and o.shipment.latest is not None,
    "refund_processing": lambda o, t: any(r.status in ("pending", "processing") for r in o.refunds),
    "refund_completed": lambda o, t: any(r.status == "completed" for r in o.refunds),
    "cancelled": lambda o, t: o.status == "cancelled",
    "with_invoice": lambda o, t: o.invoice is not None and o.invoice.status == "issued"
    and o.status in ("delivered", "paid", "shipped", "in_transit"),
    "open_return": lambda o, t: _open_rma(o),
    "any": lambda o, t: True,
}

_TEMPLATE_RE = re.compile(r"\{(\w+)\.(\w+)(?::(\w+))?\}")
_TURN_KINDS = ("say", "dtmf", "silence", "hangup", "played")
_EXPECT_KEYS = {"intent", "state", "actions", "not_actions", "reply_contains", "reply_not_contains", "end_call",
                "transfer", "expect", "barge_in", "handoff_contains"}


def _candidate_ids(shop: ShopService, limit: int = 3000) -> list[str]:
    """Order ids to search: the documented fixed demo orders first, then the shop's own (when it can list them)."""
    ids: list[str] = []
    try:
        from ivr.services.shop.seed import FIXED_ORDERS

        ids.extend(FIXED_ORDERS)
    except ImportError:
        pass
    if isinstance(shop, OrderListing):
        ids.extend(shop.order_ids(limit))
    return list(dict.fromkeys(ids))


def resolve_orders(shop: ShopService, spec: dict[str, str], today: date) -> dict[str, OrderSnapshot]:
    """Names -> orders: a query name from ORDER_QUERIES or a literal order id. Distinct names get distinct orders."""
    out: dict[str, OrderSnapshot] = {}
    candidates: list[str] | None = None
    used: set[str] = set()
    for name, query in (spec or {}).items():
        query = str(query)
        if query.isdigit():
            order = shop.get_order(query)
            if order is None:
                raise ScriptError(f"order {name}: no order {query} in the store (seeded?)")
            out[name] = order
            used.add(order.order_id)
            continue
        pred = ORDER_QUERIES.get(query)
        if pred is None:
            raise ScriptError(f"order {name}: unknown query {query!r}; known: {', '.join(ORDER_QUERIES)}")
        if candidates is None:
            candidates = _candidate_ids(shop)
        for oid in candidates:
            if oid in used:
                continue
            o = shop.get_order(oid)
            if o is not None and pred(o, today):
                out[name] = o
                used.add(oid)
                break
        else:
            raise ScriptError(f"order {name}: no order in the store matches {query!r}")
    return out


def _fields(o: OrderSnapshot) -> dict[str, str]:
    tail = re.sub(r"\D", "", o.phone)[-4:]
    wrong = "".join(str((int(c) + 5) % 10) for c in tail)
    return {"order_id": o.order_id, "phone": o.phone, "phone_tail": tail, "wrong_tail": wrong,
            "product": o.items[0].name if o.items else "", "status": o.status}


def render(value: Any, orders: dict[str, OrderSnapshot], language: str = "zh-CN") -> Any:
    """Fill {name.field[:spoken]} templates in strings (recursively in lists/dicts)."""
    if isinstance(value, list):
        return [render(v, orders, language) for v in value]
    if isinstance(value, dict):
        return {k: render(v, orders, language) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    pack = get_pack(language)

    def sub(m: re.Match) -> str:
        name, fld, fmt = m.group(1), m.group(2), m.group(3)
        if name not in orders:
            raise ScriptError(f"template {m.group(0)}: no order named {name!r}")
        fields = _fields(orders[name])
        if fld not in fields:
            raise ScriptError(f"template {m.group(0)}: unknown field {fld!r}; known: {', '.join(fields)}")
        v = fields[fld]
        return pack.say_digits(v) if fmt == "spoken" else v

    return _TEMPLATE_RE.sub(sub, value)


@dataclass
class ScriptResult:
    name: str
    ok: bool
    failures: list[str] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    manager: DialogManager | None = None


def load_script(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ScriptError(f"cannot read script {p}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ScriptError(f"{p}: not valid YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("turns"), list):
        raise ScriptError(f"{p}: a script is a mapping with a 'turns' list")
    data.setdefault("name", p.stem)
    return data


def _as_list(v: Any) -> list[str]:
    return [] if v is None else [str(x) for x in (v if isinstance(v, list) else [v])]


def check_reply(reply: BotReply, expect: dict[str, Any]) -> list[str]:
    """Why the reply does not meet the expectations (empty when it does)."""
    bad = sorted(set(expect) - _EXPECT_KEYS)
    if bad:
        return [f"unknown expectation key(s) {bad}; known: {sorted(_EXPECT_KEYS)}"]
    why: list[str] = []
    text = reply.text
    if "intent" in expect and reply.intent not in _as_list(expect["intent"]):
        why.append(f"intent {reply.intent!r}, expected {expect['intent']!r}")
    if "state" in expect and reply.state not in _as_list(expect["state"]):
        why.append(f"state {reply.state!r}, expected {expect['state']!r}")
    for a in _as_list(expect.get("actions")):
        if a not in reply.actions:
            why.append(f"action {a!r} missing (actions {reply.actions})")
    for a in _as_list(expect.get("not_actions")):
        if a in reply.actions:
            why.append(f"action {a!r} must not happen (actions {reply.actions})")
    for s in _as_list(expect.get("reply_contains")):
        if s not in text:
            why.append(f"reply lacks {s!r}")
    for s in _as_list(expect.get("reply_not_contains")):
        if s in text:
            why.append(f"reply must not contain {s!r}")
    if "end_call" in expect and bool(expect["end_call"]) != reply.end_call:
        why.append(f"end_call {reply.end_call}, expected {expect['end_call']}")
    if "expect" in expect and reply.expect != expect["expect"]:
        why.append(f"expect {reply.expect!r}, expected {expect['expect']!r}")
    if "barge_in" in expect and bool(expect["barge_in"]) != reply.barge_in:
        why.append(f"barge_in {reply.barge_in}, expected {expect['barge_in']}")
    if "transfer" in expect:
        t = expect["transfer"]
        if t is False and reply.transfer is not None:
            why.append(f"unexpected transfer ({reply.transfer.reason})")
        elif t and reply.transfer is None:
            why.append("expected a transfer, none happened")
        elif isinstance(t, dict) and reply.transfer is not None:
            for k, v in t.items():
                if getattr(reply.transfer, k, None) != v:
                    why.append(f"transfer.{k} {getattr(reply.transfer, k, None)!r}, expected {v!r}")
    if "handoff_contains" in expect:
        handoff = reply.transfer.handoff if reply.transfer else {}
        for k in _as_list(expect["handoff_contains"]):
            if not handoff.get(k):
                why.append(f"hand-off lacks {k!r}")
    return why


def _writes(shop: ShopService, before: dict[str, OrderSnapshot]) -> dict[str, int]:
    """Returns/refunds added to the script's orders during the call (to prove writes happen exactly once)."""
    out = {"returns": 0, "refunds": 0}
    for old in before.values():
        new = shop.get_order(old.order_id)
        if new is not None:
            out["returns"] += len(new.returns) - len(old.returns)
            out["refunds"] += len(new.refunds) - len(old.refunds)
    return out


def run_script(script: dict[str, Any], shop: ShopService, *, language: str = "zh-CN",
               now: Callable[[], datetime] | None = None, call_id: str = "",
               on_reply: Callable[[int, str, BotReply], None] | None = None) -> ScriptResult:
    """Run one script; never raises for a mismatch (see ``ScriptResult.failures``), raises ScriptError for a bad
    script."""
    now = now or (lambda: datetime.now(UTC))
    today = now().astimezone(_TZ).date()
    name = str(script.get("name", "script"))
    orders = resolve_orders(shop, script.get("orders") or {}, today)
    caller_id = render(str(script.get("caller_id", "") or ""), orders, language)
    m = DialogManager(shop, language=language, caller_id=caller_id, channel="script",
                      caller_id_trusted=bool(script.get("caller_id_trusted", False)),
                      call_id=call_id or f"script-{uuid.uuid4().hex[:12]}",
                      asr_available=bool(script.get("asr", True)), now=now)
    result = ScriptResult(name, True, manager=m)

    def record(i: int, label: str, reply: BotReply, expect: dict | None) -> None:
        result.replies.append({"turn": i, "input": label, **reply.as_json()})
        if on_reply:
            on_reply(i, label, reply)
        if expect:
            for why in check_reply(reply, render(expect, orders, language)):
                result.failures.append(f"turn {i} ({label}): {why}; bot said: {reply.text!r}")

    record(0, "start", m.start(), script.get("start"))
    for i, turn in enumerate(script["turns"], start=1):
        if not isinstance(turn, dict) or sum(k in turn for k in _TURN_KINDS) != 1:
            raise ScriptError(f"{name}: turn {i} needs exactly one of {', '.join(_TURN_KINDS)}")
        expect = turn.get("expect")
        if "say" in turn:
            text = render(str(turn["say"]), orders, language)
            record(i, f"say {text!r}", m.handle_text(text, float(turn.get("confidence", 1.0))), expect)
        elif "dtmf" in turn:
            digits = render(str(turn["dtmf"]), orders, language)
            record(i, f"dtmf {digits}", m.handle_dtmf(digits), expect)
        elif "silence" in turn:
            record(i, "silence", m.handle_no_input(), expect)
        elif "played" in turn:
            p = turn["played"] or {}
            last = m.ctx.last_reply
            m.played(last.reply_id if last else 0, int(p.get("segments", 0)), float(p.get("fraction", 0.0)))
        elif "hangup" in turn:
            m.end(str(turn["hangup"] or "caller"))
    end = script.get("end") or {}
    if "outcome" in end and m.outcome != end["outcome"]:
        result.failures.append(f"end: outcome {m.outcome!r}, expected {end['outcome']!r}")
    if "csat" in end and m.csat != end["csat"]:
        result.failures.append(f"end: csat {m.csat!r}, expected {end['csat']!r}")
    if "feedback" in end and len(m.feedback) != int(end["feedback"]):
        result.failures.append(f"end: {len(m.feedback)} feedback notes, expected {end['feedback']}")
    if "writes" in end:
        got = _writes(shop, orders)
        for k, v in (end["writes"] or {}).items():
            if got.get(k) != v:
                result.failures.append(f"end: {got.get(k)} new {k}, expected {v}")
    result.ok = not result.failures
    return result

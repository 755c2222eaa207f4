"""Channels in the statistics: the four contact channels a shop reports on, per-channel KPIs, and offer counts.

A record's ``channel`` is what its entry point wrote (``sip``, ``webrtc``, ``webchat``, ``messaging``, ``chat``
for the terminal console, ``replay``/``script`` for test tools). Reports group them:

* ``voice-sip``: phone calls over SIP (``sip``); ``voice-webrtc``: the web phone (``webrtc``);
* ``chat``: the web chat widget and the terminal console (``webchat``, ``chat``);
* ``webhook``: messaging platforms through the signed webhook (``messaging``);
* ``other``: anything else (fixture replay, scripted dialogues).

A channel filter (dashboard, ``/api/stats``, ``ivr records export|stats --channel``) takes a group name or a raw
channel name. Per-channel KPIs count finished contacts like the overall ones: ``calls``, ``containment`` =
self_served / calls, ``transfer_rate`` = transferred / calls, ``csat_avg`` over rated contacts, ``aht_s`` = mean
handle time; plus the offers made and accepted on that channel.

Offers (``ivr.dialog.offers``) leave actions on the bot turn that made or answered them: ``offer_made:<kind>``,
``offer_accepted:<kind>``, ``offer_declined:<kind>`` (kind: ``accessory``, ``coupon``, ``restock``). A contact
counts once per event: ``offered`` = contacts with an offer, ``accepted`` = contacts that took it,
``acceptance_rate`` = accepted / offered.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import String, cast, or_, select

from ivr.services.records.tables import CallRow, TurnRow

GROUPS: dict[str, tuple[str, ...]] = {
    "voice-sip": ("sip",),
    "voice-webrtc": ("webrtc",),
    "chat": ("webchat", "chat"),
    "webhook": ("messaging",),
}
OTHER = "other"
ORDER = (*GROUPS, OTHER)
OFFER_KINDS = ("accessory", "coupon", "restock")
OFFER_EVENTS = ("made", "accepted", "declined")
_KNOWN = tuple(c for members in GROUPS.values() for c in members)


def group_of(channel: str) -> str:
    """The report group of a raw channel name."""
    for name, members in GROUPS.items():
        if channel in members:
            return name
    return OTHER


def condition(channel: str) -> Any:
    """The SQL condition on ``call_records`` for a channel filter: a group name or a raw channel name."""
    if channel in GROUPS:
        return CallRow.channel.in_(GROUPS[channel])
    if channel == OTHER:
        return CallRow.channel.not_in(_KNOWN)
    return CallRow.channel == channel


def _ratio(n: int, d: int) -> float | None:
    return n / d if d else None


def offer_events(s: Any, conds: list[Any]) -> dict[str, dict[str, str]]:
    """call_id -> {event: kind} of the offer actions on the turns of the calls matching ``conds``."""
    text = cast(TurnRow.actions, String)
    rows = s.execute(select(TurnRow.call_id, TurnRow.actions).join(CallRow).where(
        *conds, or_(*(text.like(f"%offer_{e}:%") for e in OFFER_EVENTS)))).all()
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for call_id, actions in rows:
        for a in actions or []:
            head, _, kind = str(a).partition(":")
            event = head.removeprefix("offer_")
            if head.startswith("offer_") and event in OFFER_EVENTS and kind:
                out[call_id].setdefault(event, kind)
    return dict(out)


def offer_summary(events: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Offered / accepted / declined counts (contacts), overall and per kind, and the acceptance rate."""
    by_kind = {k: {"offered": 0, "accepted": 0, "declined": 0} for k in OFFER_KINDS}
    offered = accepted = declined = 0
    for ev in events.values():
        kind = ev.get("made")
        if kind is None:
            continue
        offered += 1
        slot = by_kind.setdefault(kind, {"offered": 0, "accepted": 0, "declined": 0})
        slot["offered"] += 1
        if "accepted" in ev:
            accepted += 1
            slot["accepted"] += 1
        elif "declined" in ev:
            declined += 1
            slot["declined"] += 1
    for slot in by_kind.values():
        slot["acceptance_rate"] = _ratio(slot["accepted"], slot["offered"])
    return {"offered": offered, "accepted": accepted, "declined": declined,
            "acceptance_rate": _ratio(accepted, offered), "by_kind": by_kind}


def by_channel(s: Any, conds: list[Any], events: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Per-channel-group KPIs of the finished calls matching ``conds`` (the four groups always, ``other`` when
    it has contacts), in :data:`ORDER`."""
    acc: dict[str, dict[str, Any]] = {g: {"calls": 0, "self_served": 0, "transferred": 0, "csat": [], "aht": [],
                                          "offered": 0, "accepted": 0} for g in ORDER}
    rows = s.execute(select(CallRow.call_id, CallRow.channel, CallRow.outcome, CallRow.csat,
                            CallRow.handle_time_s).where(*conds)).all()
    for call_id, channel, outcome, csat, aht in rows:
        a = acc[group_of(channel)]
        a["calls"] += 1
        a["self_served"] += outcome == "self_served"
        a["transferred"] += outcome == "transferred"
        if csat is not None:
            a["csat"].append(csat)
        if aht is not None:
            a["aht"].append(float(aht))
        ev = events.get(call_id, {})
        a["offered"] += "made" in ev
        a["accepted"] += "made" in ev and "accepted" in ev
    out = []
    for g in ORDER:
        a = acc[g]
        if g == OTHER and not a["calls"]:
            continue
        n = a["calls"]
        out.append({
            "channel": g, "label": g, "members": list(GROUPS.get(g, ())), "calls": n,
            "self_served": a["self_served"], "transferred": a["transferred"],
            "containment": _ratio(a["self_served"], n), "transfer_rate": _ratio(a["transferred"], n),
            "csat_avg": _ratio(sum(a["csat"]), len(a["csat"])), "csat_count": len(a["csat"]),
            "aht_s": _ratio(sum(a["aht"]), len(a["aht"])) if a["aht"] else None,
            "offers_made": a["offered"], "offers_accepted": a["accepted"],
            "offer_acceptance_rate": _ratio(a["accepted"], a["offered"]),
        })
    return out


def groups_present(channels: list[str]) -> list[dict[str, str]]:
    """The filter choices: the four groups, ``other`` when some stored channel falls in it."""
    out = [{"channel": g, "label": g} for g in GROUPS]
    if any(group_of(c) == OTHER for c in channels):
        out.append({"channel": OTHER, "label": OTHER})
    return out


__all__ = ["GROUPS", "OFFER_KINDS", "ORDER", "OTHER", "by_channel", "condition", "group_of",
           "groups_present", "offer_events", "offer_summary"]

"""The agent desk of one node as the cluster sees it, and what a survivor does for a dead node's queue.

* :func:`mirror`: this node's signed-in agents (presence, with expiry) and its waiting callers (the shared ACD
  queue, ordered by priority then arrival) go to the shared state every sync round; a caller who left the
  queue (answered, hung up, called back) leaves the shared queue.
* :func:`take_over_queue`: the callers a dead node had waiting are not lost: the first survivor to take each one
  (an atomic remove) books the callback ticket the caller would have got on a time-out, with the hand-off
  context, under the same idempotency key (``<call_id>:transfer-callback``), so it is booked at most once.

Offering the shared queue to the agents of every node is :mod:`ivr.cluster.dispatch`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Container
from typing import Any

from ivr.cluster.shared import SharedState
from ivr.privacy import mask_phone
from ivr.services.agents.desk import AgentDesk
from ivr.services.shop.api import ShopService

log = logging.getLogger(__name__)


def snapshot(desk: AgentDesk | None, node: str, phones: dict[str, str], remote: Container[str] = ()
             ) -> tuple[list[tuple[str, str]], list[tuple[str, int, dict]]]:
    """On the event loop (the desk is not thread-safe): (agent id, presence) of the signed-in agents and
    (ticket, priority, data) of the waiting callers; ``phones``: call id -> caller number; ``remote``: agents of
    other nodes on this node's calls (their own node announces them). Other nodes' callers are not announced."""
    if desk is None:
        return [], []
    agents = [(a.agent_id, a.presence) for a in desk.agents.values()
              if a.presence != "offline" and a.agent_id not in remote]
    waiting = []
    for w in desk.ordered():
        if w.node:
            continue  # a proxy of another node's caller
        h = w.handoff or {}
        order_id = h.get("order_id") or (h.get("order") or {}).get("order_id") or ""
        phone = phones.get(w.call_id, "")
        waiting.append((w.call_id, w.priority, {
            "call_id": w.call_id, "node": node, "skill": w.skill, "caller": mask_phone(phone), "phone": phone,
            "order_id": order_id, "summary": str(h.get("summary", ""))[:500], "reason": str(h.get("reason", ""))[:200],
            "priority": w.priority, "vip": w.vip, "language": w.language, "arrived": w.arrived,
            "handoff": json.loads(json.dumps(h, ensure_ascii=False, default=str))}))
    return agents, waiting


def desk_fingerprint(desk: AgentDesk | None, remote: Container[str] = ()) -> tuple:
    """On the event loop: what :func:`snapshot` would publish, cheaply (to notice a change at once)."""
    if desk is None:
        return ()
    return (tuple((a.agent_id, a.presence) for a in list(desk.agents.values()) if a.agent_id not in remote),
            tuple((w.call_id, w.priority, w.requeued) for w in list(desk.queue) if not w.node))


def mirror(state: SharedState, node: str, snap: tuple[list[tuple[str, str]], list[tuple[str, int, dict]]],
           announced: set[str], ttl_s: float) -> set[str]:
    """Publish a :func:`snapshot`; ``announced``: the tickets published last round. Returns this round's."""
    agents, waiting = snap
    for agent_id, presence in agents:
        state.set_presence(agent_id, node, presence, ttl_s)
    for ticket, priority, data in waiting:
        state.enqueue(ticket, priority, data)
    now = {t for t, _p, _d in waiting}
    for gone in announced - now:
        state.remove(gone)
    return now


def public_queue(state: SharedState) -> list[dict[str, Any]]:
    """The shared queue as /api/cluster shows it (no caller number)."""
    return [{"ticket": t, **{k: v for k, v in d.items() if k not in ("phone", "handoff")}} for t, d in state.queue()]


def take_over_queue(state: SharedState, gone: str, shop: ShopService) -> list[str]:
    """Book callbacks for the callers ``gone`` had waiting; returns the ticket ids booked by this node."""
    booked = []
    for ticket, data in state.queue():
        if data.get("node") != gone or not state.remove(ticket):
            continue  # another node's caller, or another survivor took it first
        call_id = data.get("call_id", ticket)
        try:
            t = shop.create_ticket(
                "callback", f"callback (node_lost): {data.get('reason') or data.get('summary') or 'transfer'}",
                data.get("phone", ""), data.get("order_id") or None,
                {"call_id": call_id, "why": "node_lost", "node": gone,
                 "handoff": {"summary": data.get("summary", ""), "skill": data.get("skill", "")}},
                f"{call_id}:transfer-callback")
        except Exception as e:  # the shop down: the caller is lost like the call, say so
            log.error("node %s is gone: no callback ticket for queued call %s: %s", gone, call_id, e)
            continue
        booked.append(getattr(t, "ticket_id", "") or "")
        log.warning("node %s is gone: queued call %s booked as callback ticket %s", gone, call_id, booked[-1])
    return booked

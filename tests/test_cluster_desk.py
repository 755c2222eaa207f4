"""The agent desk of a node as the cluster sees it (ivr/cluster/desk_share.py), on a real Redis seen from two
nodes: a node's signed-in agents and waiting callers appear in the shared presence and queue (order by
priority, then arrival), leave it when done, and when the node dies the first survivor books each of its
waiting callers a callback ticket in the real SQL shop, once."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from sqlalchemy import select
from test_cluster_state import pair, redis_url  # noqa: F401  (fixtures: in process and real Redis)

from ivr.cluster.desk_share import mirror, public_queue, snapshot, take_over_queue
from ivr.services.agents.desk import AgentDesk
from ivr.services.db import session_factory
from ivr.services.shop import SqlShop, seed_demo
from ivr.services.shop.models import TicketRow


def _account(agent_id: str) -> SimpleNamespace:
    return SimpleNamespace(agent_id=agent_id, username=agent_id, display_name="小李", role="agent", skills=("orders",))


async def test_a_nodes_desk_is_mirrored_and_its_waiting_callers_taken_over(pair, tmp_path):  # noqa: F811
    a, b = pair
    desk = AgentDesk()
    desk.sign_in(_account("agent-li"))
    desk.set_presence("agent-li", "away")
    desk.enqueue("call-1", priority=0, handoff={"summary": "查询退款进度", "reason": "caller asked"})
    await asyncio.sleep(0.01)
    desk.enqueue("call-2", priority=5, handoff={"summary": "投诉快递", "order": {"order_id": "20260001"}})
    phones = {"call-1": "13812345678", "call-2": "13900001111"}
    queued = mirror(b, "node2", snapshot(desk, "node2", phones), set(), ttl_s=30)
    assert queued == {"call-1", "call-2"}
    assert a.presence() == {"agent-li": {"node": "node2", "presence": "away"}}
    shown = public_queue(a)
    assert [q["ticket"] for q in shown] == ["call-2", "call-1"] and shown[1]["caller"] == "138****", shown
    assert all("phone" not in q for q in shown)  # the number is only for the callback

    w = next(x for x in desk.queue if x.call_id == "call-1")
    desk.leave(w)  # answered or hung up: it leaves the shared queue at the next round
    queued = mirror(b, "node2", snapshot(desk, "node2", phones), queued, ttl_s=30)
    assert [t for t, _ in a.queue()] == ["call-2"]

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    seed_demo(url, customers=5, orders=5)
    shop = SqlShop(url)
    booked = take_over_queue(a, "node2", shop)  # node2 died; node1 takes its caller over
    assert len(booked) == 1 and booked[0] and a.queue() == []
    assert take_over_queue(b, "node2", shop) == []  # once: nothing left for another survivor
    with session_factory(url)() as s:
        row = s.execute(select(TicketRow).where(TicketRow.ticket_id == booked[0])).scalar_one()
    assert row.kind == "callback" and row.phone == "13900001111" and row.order_id == "20260001"
    assert row.context["call_id"] == "call-2" and row.context["why"] == "node_lost"

"""Offers across nodes (ivr/cluster/dispatch.py) on a real Redis seen by two nodes' desks: a node's agent is offered
another node's callers in priority-then-arrival order across both nodes, a caller rings one agent at a time in the
whole cluster (atomic claim), and after a ring time-out the caller is offered to the next free agent, on the other
node."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest
from test_cluster_state import pair, redis_url  # noqa: F401  (fixtures: in process and a private redis-server)

from ivr.cluster.desk_share import mirror, snapshot
from ivr.cluster.dispatch import ClusterDesk
from ivr.cluster.redis_state import RedisState
from ivr.services.agents.desk import AgentDesk, DeskOptions

pytestmark = pytest.mark.timeout(60)


def _account(agent_id: str) -> SimpleNamespace:
    return SimpleNamespace(agent_id=agent_id, username=agent_id, display_name=agent_id, role="agent",
                           skills=("orders",))


class Node:
    def __init__(self, url: str, name: str) -> None:
        self.name, self.state = name, RedisState(url)
        self.desk = AgentDesk(DeskOptions(ring_timeout_s=0.6))
        self.cd = ClusterDesk(self.state, name, "s3cret", "")
        self.cd.attach(self.desk)
        self.queued: set[str] = set()
        self.events: dict[str, asyncio.Queue] = {}

    def agent(self, agent_id: str) -> asyncio.Queue:
        self.desk.sign_in(_account(agent_id))
        q = self.events[agent_id] = self.desk.subscribe(agent_id)
        self.desk.set_presence(agent_id, "available")
        return q

    async def round(self) -> None:
        self.state.heartbeat(self.name, f"http://{self.name}", 5)
        snap = snapshot(self.desk, self.name, {}, self.cd.remote_agents)
        self.queued = mirror(self.state, self.name, snap, self.queued, 5)
        await self.cd.round()

    def offer(self, agent_id: str) -> str:
        return self.desk.agents[agent_id].call_id if self.desk.agents[agent_id].presence == "ringing" else ""


async def _rounds(*nodes: Node, n: int = 2) -> None:
    for _ in range(n):
        for node in nodes:
            await node.round()


async def test_offers_cross_nodes_in_order_one_at_a_time_and_go_on_after_a_ring_timeout(redis_url):  # noqa: F811
    RedisState(redis_url).r.flushdb()
    n1, n2 = Node(redis_url, "node1"), Node(redis_url, "node2")
    try:
        await _rounds(n1, n2)
        n2.desk.enqueue("call-old", handoff={"summary": "查询退款进度"})
        await asyncio.sleep(0.02)
        n1.desk.enqueue("call-mine")  # node1's own caller, after call-old
        await asyncio.sleep(0.02)
        n2.desk.enqueue("call-vip", priority=3, handoff={"summary": "投诉快递"})
        await _rounds(n1, n2)
        # node1's desk shows node2's callers with its own, by priority then arrival across the nodes
        assert [w.call_id for w in n1.desk.ordered()] == ["call-vip", "call-old", "call-mine"]
        assert [w.call_id for w in n2.desk.ordered()] == ["call-vip", "call-old", "call-mine"]
        assert n2.desk.staffed() == 0  # no agent yet: node2 would book a callback

        n1.agent("li")
        await _rounds(n1, n2)
        assert n1.offer("li") == "call-vip"  # node2's priority caller, to node1's only agent
        assert n2.desk.staffed() == 1  # node1's agent counts on node2 (a caller there waits instead of a callback)
        claim = n1.state.r.get("ivr:claim:offer:call-vip")
        assert claim == "node1:li"
        offer = await asyncio.wait_for(n1.events["li"].get(), 2)
        while offer["type"] != "offer":
            offer = await asyncio.wait_for(n1.events["li"].get(), 2)
        assert offer["call_id"] == "call-vip" and offer["context"]["summary"] == "投诉快递"

        n2.agent("wang")  # node2's agent: not call-vip (node1 rings it), the next one
        await _rounds(n1, n2)
        assert n2.offer("wang") == "call-old" and n1.offer("li") == "call-vip"
        assert n1.state.r.get("ivr:claim:offer:call-old") == "node2:wang"

        w = n2.desk.queue[[x.call_id for x in n2.desk.queue].index("call-old")]
        n2.desk.accept("wang", w.offer_id, None)
        await _rounds(n1, n2)
        assert "call-old" not in [x.call_id for x in n1.desk.queue]  # answered on node2: gone from node1 too

        await asyncio.sleep(0.8)  # li lets it ring out: away, and the caller goes to the next free agent
        assert n1.desk.agents["li"].presence == "away"
        assert n1.state.r.get("ivr:claim:offer:call-vip") is None
        n2.agent("zhao")
        await _rounds(n1, n2)
        assert n2.offer("zhao") == "call-vip"
        assert n1.offer("li") == "" and n2.desk.agents["wang"].presence == "busy"


        # wang's leg drops: call-old is back in node2's queue and goes to the next free agent, on node1
        n2.desk.agent_dropped("wang", "call-old")
        n2.desk.requeue(w)  # ahead of callers of its former priority, on every node
        await _rounds(n1, n2, n=2)
        assert [x.call_id for x in n1.desk.ordered()] == ["call-vip", "call-old", "call-mine"]  # vip rings zhao
        n1.desk.set_presence("li", "available")
        assert n1.offer("li") == "call-old"
    finally:
        for node in (n1, n2):
            node.cd.detach()
            node.state.close()


def test_a_claim_has_one_holder_and_expires(pair):  # noqa: F811
    a, b = pair
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def grab(i: int) -> None:
        barrier.wait()
        results.append((a if i % 2 else b).claim("offer:c1", f"node{i}:agent", 2.0))

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1  # eight nodes at once: one rings its agent
    winner = next(v for v in (f"node{i}:agent" for i in range(8)) if b.claim("offer:c1", v, 2.0))
    assert not a.reclaim("offer:c1", "other:agent", 5) and a.reclaim("offer:c1", winner, 2.0)
    b.unclaim("offer:c1", "other:agent")  # not the holder: nothing happens
    assert not a.claim("offer:c1", "other:agent", 0.4)
    b.unclaim("offer:c1", winner)
    assert a.claim("offer:c1", "other:agent", 0.3)  # released: the next one gets it
    time.sleep(0.5)
    assert b.claim("offer:c1", winner, 0.3)  # expired by itself


async def test_chats_stay_with_their_nodes_agents_and_a_draining_node_offers_nothing(redis_url):  # noqa: F811
    """A web chat waiting for a person lives in its node's memory: only that node's agents are offered it. A node
    that drains (SIGTERM) offers no caller to its agents; its callers go to the other nodes' agents."""
    RedisState(redis_url).r.flushdb()
    n1, n2 = Node(redis_url, "node1"), Node(redis_url, "node2")
    try:
        n1.agent("li")
        n2.desk.enqueue("chat-1", handoff={"summary": "想问退货", "channel": "webchat"})
        await _rounds(n1, n2)
        assert [w.call_id for w in n1.desk.queue] == [] and n1.offer("li") == ""  # node2's chat: not here
        n2.agent("wang")
        assert n2.offer("wang") == "chat-1"

        assert n1.cd.drain() == ["li"]  # node1 drains: li takes no caller, not even node1's own
        n1.desk.enqueue("call-1", handoff={"summary": "查物流", "channel": "sip"})
        n2.agent("zhao")
        await _rounds(n1, n2)
        assert n1.offer("li") == "" and n2.offer("zhao") == "call-1"
    finally:
        for node in (n1, n2):
            node.cd.detach()
            node.state.close()

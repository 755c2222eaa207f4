"""The state cluster nodes share (ivr/cluster/shared.py), on both implementations: in process (one node) and a
real private Redis (redis-server on loopback) seen from two clients, as two nodes would see it."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ivr.cluster.engines import free_port, start_redis
from ivr.cluster.redis_state import RedisState
from ivr.cluster.shared import InProcessState, LiveCall, open_state


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    proc, url = start_redis(tmp_path_factory.mktemp("redis"), free_port())
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture(params=["in_process", "redis"])
def pair(request):
    """Two views of one shared state: node A's and node B's (the same object in process)."""
    if request.param == "in_process":
        s = InProcessState()
        yield s, s
        return
    url = request.getfixturevalue("redis_url")
    a, b = RedisState(url), RedisState(url)
    a.r.flushdb()
    yield a, b
    a.close()
    b.close()


def test_open_state_picks_the_implementation(redis_url):
    assert isinstance(open_state(""), InProcessState) and not open_state("").shared
    s = open_state(redis_url)
    assert isinstance(s, RedisState) and s.shared
    s.close()


def test_live_call_index_names_the_owner_and_expires(pair):
    a, b = pair
    a.put_calls([LiveCall("c1", "node1", "http://127.0.0.1:1", "sip", 1.0),
                 LiveCall("c2", "node1", "http://127.0.0.1:1", "webrtc", 2.0)], ttl_s=30)
    b.put_calls([LiveCall("c3", "node2", "http://127.0.0.1:2", "sip", 3.0)], ttl_s=0.4)
    assert b.owner("c1") == LiveCall("c1", "node1", "http://127.0.0.1:1", "sip", 1.0)
    assert [c.call_id for c in a.live_calls()] == ["c1", "c2", "c3"]
    a.drop_call("c2")
    assert b.owner("c2") is None and b.calls_of("node1") == ["c1"]
    time.sleep(0.6)  # node2 stopped refreshing: its call leaves the index
    assert a.owner("c3") is None and [c.call_id for c in b.live_calls()] == ["c1"]
    assert a.calls_of("node2") == ["c3"]  # what node2 announced stays until taken over
    assert b.forget_node("node2") == ["c3"] and a.forget_node("node2") == []  # taken over once


def test_node_heartbeats_expire(pair):
    a, b = pair
    a.heartbeat("node1", "http://127.0.0.1:1", ttl_s=30)
    b.heartbeat("node2", "http://127.0.0.1:2", ttl_s=0.4)
    assert a.nodes() == {"node1": "http://127.0.0.1:1", "node2": "http://127.0.0.1:2"}
    time.sleep(0.6)
    assert b.nodes() == {"node1": "http://127.0.0.1:1"}


def test_login_throttle_counts_failures_from_every_node(pair):
    a, b = pair
    ta, tb = a.throttle("ip", limit=3, window_s=60), b.throttle("ip", limit=3, window_s=60)
    for t in (ta, tb, ta):
        assert t.blocked_for("10.1.1.1") == 0
        t.begin("10.1.1.1")
        t.end("10.1.1.1", True)
    assert 50 < tb.blocked_for("10.1.1.1") <= 60 and ta.blocked_for("10.1.1.1") > 0
    assert ta.blocked_for("10.9.9.9") == 0  # another address is not affected
    tb.begin("10.2.2.2")
    tb.begin("10.2.2.2")
    ta.begin("10.2.2.2")  # three checks in flight count until they end
    assert ta.blocked_for("10.2.2.2") > 0
    for t in (ta, tb, tb):
        t.end("10.2.2.2", None)
    assert ta.blocked_for("10.2.2.2") == 0
    ta.end("10.1.1.1", False)  # a success clears the key
    assert tb.blocked_for("10.1.1.1") == 0


def test_throttle_window_slides(pair):
    a, b = pair
    t = a.throttle("user", limit=2, window_s=1.0)
    for _ in range(2):
        t.begin("wang")
        t.end("wang", True)
    assert b.throttle("user", limit=2, window_s=1.0).blocked_for("wang") > 0
    time.sleep(1.1)
    assert b.throttle("user", limit=2, window_s=1.0).blocked_for("wang") == 0


def test_agent_presence_expires(pair):
    a, b = pair
    a.set_presence("agent-li", "node1", "available", ttl_s=30)
    b.set_presence("agent-wu", "node2", "busy", ttl_s=0.4)
    assert a.presence() == {"agent-li": {"node": "node1", "presence": "available"},
                            "agent-wu": {"node": "node2", "presence": "busy"}}
    time.sleep(0.6)  # node2 died: its agent is gone from the desk
    assert b.presence() == {"agent-li": {"node": "node1", "presence": "available"}}


def test_a_draining_node_withdraws_only_its_own_agents_presence(pair):
    a, b = pair
    a.set_presence("agent-li", "node1", "available", ttl_s=30)
    a.set_presence("agent-wu", "node2", "available", ttl_s=30)  # signed in again on node2 meanwhile
    a.drop_presence("agent-li", "node1")
    a.drop_presence("agent-wu", "node1")
    a.drop_presence("agent-nobody", "node1")
    assert b.presence() == {"agent-wu": {"node": "node2", "presence": "available"}}


def test_queue_orders_by_priority_then_arrival_across_nodes(pair):
    a, b = pair
    a.enqueue("t1", 0, {"call_id": "c1", "node": "node1"})
    time.sleep(0.01)
    b.enqueue("t2", 5, {"call_id": "c2", "node": "node2"})
    time.sleep(0.01)
    a.enqueue("t3", 0, {"call_id": "c3", "node": "node1"})
    b.enqueue("t1", 9, {"call_id": "other"})  # already queued: keeps its place and data
    assert [t for t, _ in b.queue()] == ["t2", "t1", "t3"]
    assert a.take() == ("t2", {"call_id": "c2", "node": "node2"})
    assert b.remove("t3") and not a.remove("t3")
    assert b.take() == ("t1", {"call_id": "c1", "node": "node1"}) and a.take() is None


def test_queue_take_is_atomic_between_nodes(pair):
    a, b = pair
    for i in range(200):
        a.enqueue(f"t{i}", i % 3, {"i": i})
    got: list[list[str]] = [[], []]

    def worker(state, out):
        while (item := state.take()) is not None:
            out.append(item[0])

    threads = [threading.Thread(target=worker, args=(s, got[i])) for i, s in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    taken = got[0] + got[1]
    assert sorted(taken) == sorted(f"t{i}" for i in range(200)) and len(set(taken)) == 200


async def test_events_fan_out_to_subscribers_on_other_nodes(pair):
    a, b = pair
    stream = b.subscribe("calls")
    first = asyncio.ensure_future(anext(stream))
    for _ in range(50):  # until the subscription is in place
        a.publish("calls", {"type": "call_started", "call_id": "c1", "node": "node1", "text": "您好"})
        done, _ = await asyncio.wait({first}, timeout=0.1)
        if done:
            break
    assert first.result() == {"type": "call_started", "call_id": "c1", "node": "node1", "text": "您好"}
    await stream.aclose()

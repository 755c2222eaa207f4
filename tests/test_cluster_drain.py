"""SIGTERM drains a cluster node (ivr/cluster/drain.py) on a real local cluster (PostgreSQL, Redis, 2 `ivr serve`
nodes, Kamailio, HAProxy: ivr/cluster/local.py), during sipp load through Kamailio.

node2 gets SIGTERM while it holds sipp calls, a WebRTC caller waiting for an agent, a signed-in agent and a web
chat. Its calls go on to their normal end and its chat goes on through HAProxy; it answers Kamailio's OPTIONS
probes 503 (marked down within the probe interval) and HAProxy's check 404 (NOLB: new chats go to node1); every
call placed after the SIGTERM is answered by node1 (0 failed); its agent leaves the shared presence at once; at the
drain timeout the waiting caller is booked a callback ticket and hears its number; then node2 exits, every record
it wrote is whole and final (none ended as node_lost). Started again and drained with only short calls, it exits
as soon as they have ended, well before the drain timeout."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time

import httpx
import pytest
from sqlalchemy import create_engine, text
from test_cluster_http import chat_owner
from test_cluster_sip import Load, records, routed

from ivr.cluster.local import LocalCluster
from ivr.cluster.redis_state import RedisState
from ivr.services.agents import AccountStore
from ivr.telephony.webrtc.client import WebRtcClient

pytestmark = [pytest.mark.slow, pytest.mark.live, pytest.mark.timeout(900)]
PING_S, FR_MS = 1, 1000
DRAIN_S = 25  # drain_timeout_s of the nodes
PASSWORD = "Drain-desk-2026"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    env = {"IVR_MAX_CALLS": "40", "IVR_SIP_SESSION_EXPIRES": "0", "IVR_DRAIN_TIMEOUT_S": str(DRAIN_S),
           "IVR_QUEUE_MAX_WAIT_S": "600", "IVR_AGENT_RING_TIMEOUT_S": "60", "IVR_TTS_SPEED": "450"}
    with LocalCluster(tmp_path_factory.mktemp("cluster"), ping_interval=PING_S, fr_timer_ms=FR_MS,
                      node_env=env) as c:
        yield c


def haproxy_status(c: LocalCluster) -> dict[str, str]:
    """HAProxy's view of the nodes (stats CSV): UP, NOLB (draining), DOWN."""
    rows = csv.DictReader(io.StringIO(httpx.get(f"http://127.0.0.1:{c.haproxy_stats_port}/;csv", timeout=5)
                                      .text.lstrip("# ")))
    return {r["svname"]: r["status"] for r in rows if r["pxname"] == "ivr_nodes" and r["svname"].startswith("node")}


async def until(check, timeout: float, what: str) -> float:
    """Seconds until ``check()`` is true."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


def log_of(c: LocalCluster, name: str) -> str:
    return (c.root / name / "serve.log").read_text("utf-8", "replace")


async def test_sigterm_drains_node2_during_load(cluster, tmp_path):
    c = cluster
    node1, node2 = c.nodes
    shared = RedisState(c.redis_url)
    AccountStore(c.db_url).add("li.na", role="agent", password=PASSWORD, display_name="李娜")
    caller = WebRtcClient()
    try:
        async with httpx.AsyncClient(base_url=node2.url, timeout=30) as agent:
            # an agent signed in on node2; a caller of node2 asks for a person, the agent declines: it waits
            assert (await agent.post("/api/login", json={"username": "li.na", "password": PASSWORD})).status_code == 200
            assert (await agent.post("/api/agent/presence", json={"state": "available"})).status_code == 200
            await until(lambda: [p["node"] for p in shared.presence().values()] == ["node2"], 10, "agent presence")
            await caller.call(node2.url)
            await caller.wait_for(lambda: caller.bot_lines(), 30, "greeting")
            await asyncio.sleep(1.0)
            caller.press("0")
            offer = None
            for _ in range(150):
                offer = (await agent.get("/api/agent/state")).json()["offer"]
                if offer:
                    break
                await asyncio.sleep(0.2)
            assert offer and offer["call_id"] == caller.call_id, (offer, caller.bot_lines())
            assert (await agent.post(f"/api/agent/offers/{offer['offer_id']}/decline", json={})).status_code == 204
            await until(lambda: [d["node"] for _t, d in shared.queue()] == ["node2"], 10, "caller in shared queue")

            # a web chat held by node2, reached through HAProxy
            chat = None
            for _ in range(10):
                r = httpx.post(f"{c.http_url}/api/chat/sessions", json={}, timeout=30)
                assert r.status_code == 201, r.text
                if chat_owner(c, r.json()) == "node2":
                    chat = r.json()
                    break
            assert chat is not None

            # sipp load through Kamailio; SIGTERM node2 while it holds calls
            earlier = set(routed(c))
            load = Load(c, tmp_path, "drain", calls=20, rate=4, hold_ms=4000)
            running = asyncio.create_task(load.run())
            await asyncio.sleep(2.6)
            before = set(routed(c)) - earlier
            on2 = [cid for cid in before if routed(c)[cid] == ["node2"]]
            assert on2, routed(c)
            assert haproxy_status(c) == {"node1": "UP", "node2": "UP"}
            c.drain_node(node2)
            port = node2.sip_port
            probed_down = await until(lambda: re.search(rf"node down: OPTIONS sip:127\.0\.0\.1:{port}\b",
                                                        c.kamailio_log.read_text()), 10, "Kamailio marks node2 down")
            # Calls routed until Kamailio marked node2 down may still be node2's (round-robin before node2 took the
            # signal under load, or logged after the snapshot above): "new calls" are those routed after this.
            await asyncio.sleep(0.3)
            at_down = set(routed(c))
            await until(lambda: not shared.presence(), 5, "node2's agent leaves the shared presence")
            await until(lambda: haproxy_status(c)["node2"].startswith("NOLB"), 10, "HAProxy: node2 draining")
            assert (await agent.get("/api/cluster/health")).status_code == 404
            assert (await agent.get("/api/agent/state")).status_code == 200  # its browsers are still served
            r = httpx.post(f"{c.http_url}/api/chat/sessions/{chat['session_id']}/messages", json={"text": "怎么退货"},
                           headers={"X-Chat-Token": chat["chat_token"]}, timeout=30)
            assert r.status_code == 200 and r.json()["messages"][-1]["role"] == "bot", r.text  # its chat goes on
            for _ in range(3):  # new chats: node1
                r = httpx.post(f"{c.http_url}/api/chat/sessions", json={}, timeout=30)
                assert r.status_code == 201 and chat_owner(c, r.json()) == "node1"

            ok, failed, screen = await running
            assert (ok, failed) == (20, 0), screen
            done, where = load.succeeded(), routed(c)
            assert all(cid in done for cid in on2), (on2, done)  # node2's calls went on to their end
            after = [cid for cid in where if cid not in before | earlier | at_down]
            assert after and all(where[cid][-1] == "node1" for cid in after), where  # new calls: node1

            # the waiting caller keeps node2 until the drain timeout, then is booked a callback and hears it
            assert node2.proc is not None and node2.proc.alive()
            await caller.wait_for(lambda: any("登记回电" in x for x in caller.bot_lines()), DRAIN_S + 30,
                                  "the callback line")
        exited = await until(lambda: not node2.proc.alive(), 60, "node2 exits")
        log2 = log_of(c, "node2")
        assert "SIGTERM: draining" in log2 and "drain timeout after" in log2, log2[-3000:]
        assert "1 waiting caller(s) offered a callback" in log2, log2[-3000:]
        print(f"drain: Kamailio marked node2 down {probed_down:.2f} s after SIGTERM; node2 exited {exited:.1f} s "
              "after the callback line")
        assert probed_down <= PING_S + FR_MS / 1000 + 1.5, probed_down

        # node2's records: whole and final; the waiting caller's names its ticket, which is in the shop
        recs = records(c, [done[cid] for cid in on2])
        assert len(recs) == len(on2) and all(r["outcome"] != "in_progress" and r["ended_at"]
                                             and r["turns"] == r["turn_count"] for r in recs.values()), recs
        eng = create_engine(c.db_url)
        try:
            with eng.connect() as db:
                row = db.execute(text("select outcome, extra from call_records where call_id = :c"),
                                 {"c": caller.call_id}).one()
                assert row.outcome != "in_progress" and row.extra.get("callback_ticket"), row
                ticket = db.execute(text("select kind, context from tickets where ticket_id = :t"),
                                    {"t": row.extra["callback_ticket"]}).one()
                assert ticket.kind == "callback" and ticket.context["call_id"] == caller.call_id, ticket
                stale = db.execute(text("select call_id, outcome, end_reason from call_records "
                                        "where outcome = 'in_progress' or end_reason = 'node_lost'")).all()
                assert stale == [], stale
        finally:
            eng.dispose()
        assert shared.queue() == []
    finally:
        await caller.close()
        shared.close()

    # Kamailio already sends nothing to node2: a fresh load lands on node1 only, no retries
    fresh = Load(c, tmp_path, "fresh", calls=6, rate=4, hold_ms=1000)
    ok, failed, screen = await fresh.run()
    assert (ok, failed) == (6, 0), screen
    assert all(routed(c)[cid] == ["node1"] for cid in fresh.succeeded()), routed(c)


async def test_a_drained_node_exits_once_its_calls_have_ended(cluster, tmp_path):
    c = cluster
    node2 = c.nodes[1]
    if node2.proc is None or not node2.proc.alive():
        c.restart_node(node2)
    await until(lambda: re.search(rf"node up: OPTIONS sip:127\.0\.0\.1:{node2.sip_port}\b",
                                  c.kamailio_log.read_text()), 15, "node2 probed up")
    earlier = set(routed(c))
    load = Load(c, tmp_path, "short", calls=8, rate=4, hold_ms=3000)
    running = asyncio.create_task(load.run())
    await asyncio.sleep(1.6)
    on2 = [cid for cid in set(routed(c)) - earlier if routed(c)[cid] == ["node2"]]
    assert on2, routed(c)
    c.drain_node(node2)
    t0 = time.monotonic()
    ok, failed, screen = await running
    assert (ok, failed) == (8, 0), screen
    assert all(cid in load.succeeded() for cid in on2)
    try:
        await until(lambda: not node2.proc.alive(), DRAIN_S + 20, "node2 exits")
    except AssertionError as e:  # seen once in a loaded CI run: what the node was waiting for is in its log
        raise AssertionError(f"{e}\n{log_of(c, 'node2')[-4000:]}") from None
    exited = time.monotonic() - t0
    log2 = log_of(c, "node2")
    assert re.search(r"drained in [\d.]+ s: every call has ended", log2), log2[-3000:]
    print(f"drain with short calls: node2 exited {exited:.1f} s after SIGTERM (calls of 3 s)")
    assert exited < DRAIN_S, exited

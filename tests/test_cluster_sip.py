"""SIP across a real local cluster (ivr/cluster/local.py: PostgreSQL, Redis, 2 `ivr serve` nodes, Kamailio with
deploy/cluster/kamailio.cfg, HAProxy): sipp load through Kamailio spreads over both nodes with no failed call;
kill -9 of one node during load leaves the other's calls untouched, Kamailio notices within its probe interval
(measured), every later call lands on the survivor and succeeds, and the dead node's records in PostgreSQL are
whole up to its last write (the calls it held are ended as node_lost by the survivor)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest
from sip.peers import free_port, prepare_workdir
from sqlalchemy import create_engine, text

from ivr.cluster.local import LocalCluster
from ivr.telephony.sip.sipp_scenario import caller_scenario

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PING_S, FR_MS = 1, 1000

# A caller through the proxy: the ACK and BYE follow the Record-Route set; the record id the node puts in its
# 200 OK (X-Ivr-Call-Id) and the SIP Call-ID are logged when the call ends well.
SCENARIO = caller_scenario(
    "cluster caller", codec="PCMU", proxied=True,
    on_answer='<ereg regexp="[^ \\r\\n]+" search_in="hdr" header="X-Ivr-Call-Id:" check_it="true" assign_to="rec"/>',
    on_end='<log message="ok [call_id] [$rec]"/>')


class Load:
    """One sipp run through Kamailio: ``calls`` calls at ``rate``/s, each ``hold_ms`` long."""

    def __init__(self, cluster: LocalCluster, work: Path, name: str, calls: int, rate: float, hold_ms: int):
        self.cluster, self.work, self.name = cluster, prepare_workdir(work), name
        self.calls, self.rate, self.hold_ms = calls, rate, hold_ms
        (work / "cluster.xml").write_text(SCENARIO)
        self.log = work / f"{name}.log"

    async def run(self) -> tuple[int, int, str]:
        args = ["sipp", self.cluster.sip_address, "-sf", str(self.work / "cluster.xml"), "-s", "ivr",
                "-m", str(self.calls), "-r", str(self.rate), "-d", str(self.hold_ms), "-nostdin",
                "-timeout", "90s", "-timeout_error", "-recv_timeout", "15000", "-trace_logs", "-log_file",
                str(self.log), "-trace_err", "-error_file", str(self.work / f"{self.name}.err"),
                "-i", "127.0.0.1", "-p", str(free_port()), "-l", str(self.calls),
                # a 180 that Kamailio's UDP workers pass on just after the 200 is stale, as for any phone
                "-default_behaviors", "all,-abortunexp"]
        proc = await asyncio.create_subprocess_exec(*args, cwd=self.work, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 150)
        screen = out.decode("utf-8", "replace")
        return _count(screen, "Successful call"), _count(screen, "Failed call"), screen[-2500:]

    def succeeded(self) -> dict[str, str]:
        """SIP Call-ID -> record id of every call that ended well."""
        text_ = self.log.read_text("utf-8", "replace") if self.log.exists() else ""
        return dict(re.findall(r"ok (\S+) (\S+)", text_))


def _count(screen: str, label: str) -> int:
    rows = [line for line in screen.splitlines() if line.strip().startswith(label)]
    nums = re.findall(r"\d+", rows[-1]) if rows else []
    return int(nums[-1]) if nums else -1


def routed(cluster: LocalCluster) -> dict[str, list[str]]:
    """SIP Call-ID -> the nodes Kamailio sent its INVITE to, in order (a retry adds the next node)."""
    out: dict[str, list[str]] = {}
    by_port = {str(n.sip_port): n.name for n in cluster.nodes}
    for call_id, port in re.findall(r"(?:new|retry) call (\S+) (?:to|on) node sip:127\.0\.0\.1:(\d+)",
                                    cluster.kamailio_log.read_text("utf-8", "replace")):
        out.setdefault(call_id, []).append(by_port[port])
    return out


def records(cluster: LocalCluster, ids: list[str]) -> dict[str, dict]:
    eng = create_engine(cluster.db_url)
    try:
        with eng.connect() as c:
            rows = c.execute(text(
                "select r.call_id, r.outcome, r.ended_at, r.turn_count, "
                "(select count(*) from call_turns t where t.call_id = r.call_id) as turns "
                "from call_records r where r.call_id = any(:ids)"), {"ids": ids}).mappings().all()
    finally:
        eng.dispose()
    return {r["call_id"]: dict(r) for r in rows}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(tmp_path_factory.mktemp("cluster"), ping_interval=PING_S, fr_timer_ms=FR_MS,
                      node_env={"IVR_MAX_CALLS": "40", "IVR_SIP_SESSION_EXPIRES": "0"}) as c:
        yield c


async def test_load_spreads_over_both_nodes_without_failures(cluster, tmp_path):
    load = Load(cluster, tmp_path, "spread", calls=12, rate=4, hold_ms=2000)
    ok, failed, screen = await load.run()
    assert (ok, failed) == (12, 0), screen
    done = load.succeeded()
    where = routed(cluster)
    per_node = {n.name: sum(1 for cid in done if where.get(cid) == [n.name]) for n in cluster.nodes}
    assert sum(per_node.values()) == 12, (per_node, where)
    assert all(v >= 12 / 3 for v in per_node.values()), per_node
    recs = records(cluster, list(done.values()))
    assert len(recs) == 12 and all(r["outcome"] != "in_progress" and r["ended_at"] for r in recs.values()), recs


async def test_kill_9_of_a_node_during_load(cluster, tmp_path):
    """kill -9 of node2 while calls run on both: node1's calls go on, Kamailio marks node2 down within a probe
    interval plus the probe's timeout, later calls all land on node1 and succeed, node2's records stay whole."""
    node1, node2 = cluster.nodes
    earlier = set(routed(cluster))  # the calls of the other tests
    load = Load(cluster, tmp_path, "during", calls=16, rate=4, hold_ms=5000)
    running = asyncio.create_task(load.run())
    await asyncio.sleep(2.6)  # ~10 calls placed, about half of them on node2, all still talking
    before_kill = set(routed(cluster)) - earlier
    assert node2.proc is not None
    killed_at = time.monotonic()
    node2.proc.kill9()
    detected, port = None, node2.sip_port
    while time.monotonic() - killed_at < 15:
        # down by a lost OPTIONS probe, or by an INVITE it did not answer (then retried on the other node)
        if re.search(rf"node down: OPTIONS sip:127\.0\.0\.1:{port}\b|node sip:127\.0\.0\.1:{port} did not answer",
                     cluster.kamailio_log.read_text()):
            detected = time.monotonic() - killed_at
            break
        await asyncio.sleep(0.05)
    assert detected is not None, cluster.kamailio_log.read_text()[-3000:]
    ok, failed, screen = await running
    done, where = load.succeeded(), routed(cluster)
    on1 = [cid for cid in before_kill if where[cid] == ["node1"]]
    on2 = [cid for cid in before_kill if where[cid] == ["node2"]]
    assert on1 and on2, where
    assert all(cid in done for cid in on1), (screen, on1, done)  # node1's calls went on to their end
    assert ok + failed == 16 and failed <= len(on2), screen      # only calls already on node2 were lost
    later = [cid for cid in where if cid not in before_kill | earlier]
    assert all(cid in done for cid in later), (screen, later, where)  # placed after the kill: all answered

    # after the probe interval: a fresh load lands only on the survivor and nothing fails
    after = Load(cluster, tmp_path, "after", calls=8, rate=4, hold_ms=1000)
    ok2, failed2, screen2 = await after.run()
    assert (ok2, failed2) == (8, 0), screen2
    where = routed(cluster)
    assert len(after.succeeded()) == 8 and all(where[cid] == ["node1"] for cid in after.succeeded()), where

    # node2's records: the calls it finished are final; the ones it held when killed were written at their start
    # (no half-written turns) and node1, seeing node2's heartbeat expire, ended them as failed / node_lost
    recs = records(cluster, [load.succeeded()[c] for c in on2 if c in done])
    assert all(r["outcome"] != "in_progress" and r["turns"] == r["turn_count"] for r in recs.values()), recs
    lost = len(on2) - sum(1 for c in on2 if c in done)
    # an INVITE node2 took in (start row written) but never answered was retried on node1: its row is ended too
    retried = sum(1 for nodes in where.values() if nodes[:1] == ["node2"] and len(nodes) > 1)
    eng = create_engine(cluster.db_url)
    for _ in range(60):
        with eng.connect() as c:
            rows = c.execute(text("select r.call_id, r.outcome, r.end_reason, r.turn_count, (select count(*) "
                                  "from call_turns t where t.call_id = r.call_id) from call_records r "
                                  "where r.outcome = 'in_progress' or r.end_reason = 'node_lost'")).all()
        if all(r[1] != "in_progress" for r in rows):
            break
        await asyncio.sleep(0.25)
    eng.dispose()
    assert all(r[1] == "failed" and r[2] == "node_lost" for r in rows), rows
    assert lost <= len(rows) <= lost + retried, (rows, lost, retried)
    assert all(tc == n for _cid, _o, _r, tc, n in rows), rows
    _figures(under_load_detection_s=round(detected, 2), calls_lost_on_killed_node=lost,
             calls_on_survivor_during_kill=len(on1))
    print(f"failover detection under load {detected:.2f} s (probe interval {PING_S} s, timeout {FR_MS} ms)")
    assert detected <= PING_S + FR_MS / 1000 + 1.5, detected


async def test_a_node_back_is_used_again_and_an_idle_death_is_seen_by_the_probes(cluster, tmp_path):
    """node2 (killed above, or killed now) starts again: the probes bring it back and calls spread again; a
    kill -9 with no call in flight is noticed by the OPTIONS probes alone within interval + timeout."""
    node2 = cluster.nodes[1]
    if node2.proc is not None and node2.proc.alive():
        node2.proc.kill9()
    cluster.restart_node(node2)
    up = rf"node up: OPTIONS sip:127\.0\.0\.1:{node2.sip_port}\b"
    for _ in range(100):
        if re.search(up, cluster.kamailio_log.read_text()):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("node2 not probed up: " + cluster.kamailio_log.read_text()[-2000:])
    earlier = set(routed(cluster))
    load = Load(cluster, tmp_path, "back", calls=6, rate=4, hold_ms=1000)
    ok, failed, screen = await load.run()
    assert (ok, failed) == (6, 0), screen
    nodes = [routed(cluster)[cid][0] for cid in set(routed(cluster)) - earlier]
    assert nodes.count("node2") >= 2 and nodes.count("node1") >= 2, nodes

    await asyncio.sleep(PING_S)  # no call in flight
    assert node2.proc is not None
    killed_at = time.monotonic()
    node2.proc.kill9()
    down = rf"node down: OPTIONS sip:127\.0\.0\.1:{node2.sip_port}\b"
    seen = len(re.findall(down, cluster.kamailio_log.read_text()))
    detected = None
    while time.monotonic() - killed_at < 15:
        if len(re.findall(down, cluster.kamailio_log.read_text())) > seen:
            detected = time.monotonic() - killed_at
            break
        await asyncio.sleep(0.05)
    assert detected is not None, cluster.kamailio_log.read_text()[-2000:]
    _figures(idle_detection_s=round(detected, 2))
    print(f"failover detection by probes alone {detected:.2f} s (interval {PING_S} s, timeout {FR_MS} ms)")
    assert detected <= PING_S + FR_MS / 1000 + 1.0, detected


def _figures(**values: object) -> None:
    """Measured figures for docs/benchmarks.md and docs/deploy-cluster.md (test-artifacts/cluster_failover.json)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "cluster_failover.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update({"probe_interval_s": PING_S, "probe_timeout_ms": FR_MS, **values})
    path.write_text(json.dumps(old, indent=1))

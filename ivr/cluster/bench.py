"""SIP load through a local cluster (``python -m ivr.cluster.bench --levels 10,20``): sipp callers that talk the
whole call (A-law speech-like audio) through Kamailio to 2 real ``ivr serve`` nodes (keypad mode, real dialogue,
TTS and records in PostgreSQL). Per level: calls that succeeded and failed, how many each node took, each node's
CPU, greeting/turn latency from the nodes' own ``ivr_turn_latency_seconds`` histograms, playout stalls.
A level holds the real-time target when no call failed and no node's playout stalled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np

from ivr.audio import g711
from ivr.audio.frames import AudioFrame
from ivr.cluster.engines import free_port
from ivr.cluster.local import LocalCluster
from ivr.telephony.sip.sipp_scenario import caller_scenario


def _caller_audio(seconds: float) -> bytes:
    """A-law 'speech' (as ivr bench sip's callers): a 300 Hz tone with a syllable-rate envelope, never silent."""
    t = np.arange(int(seconds * 8000)) / 8000
    x = 0.3 * np.sin(2 * np.pi * 300 * t) * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))
    return g711.alaw_encode(AudioFrame.from_numpy(x, 8000))


def _metrics(url: str) -> dict[str, float]:
    """The node's Prometheus counters and histogram buckets this bench reads, by sample name and labels."""
    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(("ivr_calls_total", "ivr_turn_latency_seconds_bucket", "ivr_playout_stalls_total")):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _quantile(before: list[dict[str, float]], after: list[dict[str, float]], q: float) -> float | None:
    """Upper bucket bound (ms) holding quantile ``q`` of this level's turns, summed over the nodes."""
    counts: dict[float, float] = {}
    for b, a in zip(before, after, strict=True):
        for name, v in a.items():
            m = re.match(r'ivr_turn_latency_seconds_bucket\{input="[^"]*",le="([^"]+)"\}', name)
            if m and m.group(1) != "+Inf":
                counts[float(m.group(1))] = counts.get(float(m.group(1)), 0) + v - b.get(name, 0)
    total = max(counts.values()) if counts else 0
    for le in sorted(counts):
        if total and counts[le] >= q * total:
            return le * 1000
    return None


async def level(cluster: LocalCluster, work: Path, calls: int, rate: float, seconds: float) -> dict:
    before = [_metrics(n.url) for n in cluster.nodes]
    cpu0 = [_cpu_s(n.proc.pid) for n in cluster.nodes if n.proc]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    proc = await asyncio.create_subprocess_exec(
        "sipp", cluster.sip_address, "-sf", "load.xml", "-s", "ivr", "-m", str(calls), "-r", str(rate),
        "-l", str(calls), "-d", str(int(seconds * 1000)), "-i", "127.0.0.1", "-p", str(free_port(2)),
        "-timeout", f"{int(calls / rate + seconds + 60)}s", "-timeout_error", "-nostdin",
        "-default_behaviors", "all,-abortunexp", cwd=work, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out = (await proc.communicate())[0].decode("utf-8", "replace")
    await asyncio.sleep(1.5)
    wall = loop.time() - t0
    after = [_metrics(n.url) for n in cluster.nodes]
    cpu1 = [_cpu_s(n.proc.pid) for n in cluster.nodes if n.proc]

    def last(label: str) -> int:
        rows = [r for r in out.splitlines() if r.strip().startswith(label)]
        nums = re.findall(r"\d+", rows[-1]) if rows else []
        return int(nums[-1]) if nums else -1

    def delta(i: int, prefix: str) -> float:
        return sum(v - before[i].get(k, 0) for k, v in after[i].items() if k.startswith(prefix))

    return {"calls": calls, "rate": rate, "seconds": seconds, "ok": last("Successful call"),
            "failed": last("Failed call"),
            "per_node": [int(delta(i, "ivr_calls_total")) for i in range(len(after))],
            "cpu_percent_per_node": [round(100 * (c1 - c0) / wall) for c0, c1 in zip(cpu0, cpu1, strict=True)],
            "turn_p50_ms_le": _quantile(before, after, 0.5),
            "turn_p95_ms_le": _quantile(before, after, 0.95),
            "playout_stalls": int(sum(delta(i, "ivr_playout_stalls_total") for i in range(len(after)))),
            "load_average": os.getloadavg()[0]}


async def run(levels: list[int], rate: float, seconds: float) -> list[dict]:
    root = Path(tempfile.mkdtemp(prefix="ivr-cluster-bench-"))
    work = root / "sipp"
    work.mkdir()
    (work / "load.xml").write_text(caller_scenario("cluster load", proxied=True, rtp_stream="caller.alaw"))
    (work / "caller.alaw").write_bytes(_caller_audio(seconds))
    results = []
    with LocalCluster(root / "cluster", node_env={"IVR_MAX_CALLS": str(max(levels)), "IVR_SIP_SESSION_EXPIRES": "0"},
                      demo=True) as cluster:
        for n in levels:
            r = await level(cluster, work, n, rate, seconds)
            r["holds"] = r["failed"] == 0 and r["ok"] == n and r["playout_stalls"] == 0
            print(json.dumps(r), flush=True)
            results.append(r)
    shutil.rmtree(root, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ivr.cluster.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", default="10,20,40", help="calls per level, comma list")
    p.add_argument("--rate", type=float, default=2.0, help="new calls per second")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each call (the caller talks throughout)")
    args = p.parse_args(argv)
    results = asyncio.run(run([int(x) for x in args.levels.split(",")], args.rate, args.seconds))
    print("| calls | calls/s | s/call | ok | failed | node1/node2 | CPU node1/node2 (% of a core) | turn p50 ms | "
          "turn p95 ms | playout stalls | load avg | holds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['calls']} | {r['rate']:g} | {r['seconds']:g} | {r['ok']} | {r['failed']} | "
              f"{'/'.join(map(str, r['per_node']))} | {'/'.join(map(str, r['cpu_percent_per_node']))} | "
              f"<= {r['turn_p50_ms_le']:.0f} | <= {r['turn_p95_ms_le']:.0f} | {r['playout_stalls']} | "
              f"{r['load_average']:.1f} | {'yes' if r['holds'] else 'no'} |" if r["turn_p50_ms_le"] else str(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())

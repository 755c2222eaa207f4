"""A whole ivr cluster on loopback for trying and testing it (``./run cluster``): a private PostgreSQL and Redis,
two ``ivr serve`` nodes (deploy/cluster/node1.toml, node2.toml: own SIP/HTTP ports and RTP range, the same
database, Redis and secret key), Kamailio in front of their SIP (deploy/cluster/kamailio.cfg: dispatcher,
OPTIONS probes, failover) and HAProxy in front of their HTTP (deploy/cluster/haproxy.cfg).

``python -m ivr.cluster.local [--dir DIR] [--sip-port N] [--http-port N]`` starts it, prints the addresses and
runs until Ctrl-C (or SIGTERM), then stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ivr.cluster.engines import (
    DEPLOY,
    EngineError,
    Proc,
    free_port,
    start_haproxy,
    start_kamailio,
    start_postgres,
    start_redis,
    wait_until,
)


@dataclass
class Node:
    """One ``ivr serve`` of the cluster."""

    name: str
    http_port: int
    sip_port: int
    rtp: tuple[int, int]
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@dataclass
class LocalCluster:
    """Start with :meth:`start` (or ``with``); everything started is stopped by :meth:`stop`, newest first."""

    root: Path
    sip_port: int = 0                # Kamailio's; 0 = a free one
    http_port: int = 0               # HAProxy's; 0 = a free one
    ping_interval: int = 1           # Kamailio's OPTIONS probe interval, seconds
    fr_timer_ms: int = 1000          # a node that answers neither probe nor INVITE within this is down
    node_env: dict[str, str] = field(default_factory=dict)  # extra IVR_* settings for both nodes
    redis: bool = True               # False: the nodes keep live state in process (no Redis started)
    demo: bool = True                # seed the demo shop (`ivr serve --demo`)
    nodes: list[Node] = field(default_factory=list)
    procs: list[Proc] = field(default_factory=list)
    db_url: str = ""
    redis_url: str = ""
    haproxy_stats_port: int = 0
    secret: str = ""                 # the nodes' shared secret_key

    def start(self) -> LocalCluster:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.sip_port = self.sip_port or free_port(socket.SOCK_DGRAM)
        self.http_port = self.http_port or free_port()
        self.haproxy_stats_port = free_port()
        pg_root = self.root / "postgresql"
        if os.geteuid() == 0:  # the postgres user must reach its folder: not under a private (0700) one
            pg_root = Path(tempfile.mkdtemp(prefix="ivr-cluster-pg-"))
        pg, self.db_url = start_postgres(pg_root, free_port())
        if pg_root != self.root / "postgresql":
            pg.on_stop.append(lambda: shutil.rmtree(pg_root, ignore_errors=True))
        self.procs.append(pg)
        if self.redis:
            rd, self.redis_url = start_redis(self.root / "redis", free_port())
            self.procs.append(rd)
        # per-node ranges of 200 ports below Linux's ephemeral range (32768-), apart for clusters run in parallel
        rtp_base = 20000 + (os.getpid() % 30) * 400
        self.nodes = [Node(f"node{i}", free_port(), free_port(socket.SOCK_DGRAM), (rtp_base + (i - 1) * 200,
                                                                           rtp_base + i * 200 - 1))
                      for i in (1, 2)]
        self.secret = secrets.token_hex(32)
        for node in self.nodes:
            node.proc = self._start_node(node, self.secret)
            self.procs.append(node.proc)
        for node in self.nodes:
            try:
                self.wait_node(node, 120)
            except EngineError:  # a free port taken by another process meanwhile: once more on new ones
                if node.proc is None or "address already in use" not in node.proc.tail():
                    raise
                node.http_port, node.sip_port = free_port(), free_port(socket.SOCK_DGRAM)
                self.restart_node(node)
        self.procs.append(start_kamailio(self.root / "kamailio", self.sip_port, [n.sip_port for n in self.nodes],
                                         self.ping_interval, self.fr_timer_ms))
        self.procs.append(start_haproxy(self.root / "haproxy", self.http_port, self.haproxy_stats_port,
                                        [n.http_port for n in self.nodes]))
        wait_until(lambda: httpx.get(f"{self.http_url}/health", timeout=2).status_code == 200, 30,
                   "HAProxy's first healthy node")

    def _start_node(self, node: Node, secret: str) -> Proc:
        data = self.root / node.name
        data.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update({"IVR_CONFIG": str(DEPLOY / f"{node.name}.toml"), "IVR_DATA_DIR": str(data),
                    "IVR_DB_URL": self.db_url, "IVR_REDIS_URL": self.redis_url, "IVR_SECRET_KEY": secret,
                    "IVR_HOST": "127.0.0.1", "IVR_PORT": str(node.http_port), "IVR_SIP_PORT": str(node.sip_port),
                    "IVR_RTP_PORT_MIN": str(node.rtp[0]), "IVR_RTP_PORT_MAX": str(node.rtp[1]),
                    "IVR_NODE_NAME": node.name, "PYTHONUNBUFFERED": "1"})
        env.update(self.node_env)
        args = [sys.executable, "-m", "ivr", "serve"] + (["--demo"] if self.demo else [])
        proc = Proc.start(node.name, args, data / "serve.log", env=env)
        proc.stop_signal = signal.SIGINT  # stopping the whole cluster: no drain (SIGTERM would wait for calls)
        return proc

    def drain_node(self, node: Node) -> None:
        """SIGTERM: the node drains (ivr.cluster.drain) and exits once its calls have ended."""
        assert node.proc is not None
        node.proc.popen.send_signal(signal.SIGTERM)

    def wait_node(self, node: Node, timeout: float = 120) -> None:
        assert node.proc is not None
        wait_until(lambda: httpx.get(f"{node.url}/health", timeout=2).status_code == 200, timeout,
                   f"ivr serve {node.name}", node.proc)

    def restart_node(self, node: Node) -> None:
        """Start a node again (after :meth:`Proc.kill9` or a stop) on the same ports."""
        node.proc = self._start_node(node, self.secret)
        self.procs.append(node.proc)
        self.wait_node(node)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def sip_address(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    @property
    def kamailio_log(self) -> Path:
        return self.root / "kamailio" / "kamailio.log"

    def addresses(self) -> str:
        lines = [f"SIP (Kamailio, calls go here):  sip:ivr@{self.sip_address}",
                 f"HTTP (HAProxy):                 {self.http_url}/phone  /agent  /dashboard",
                 f"HAProxy stats:                  http://127.0.0.1:{self.haproxy_stats_port}/",
                 f"PostgreSQL:                     {self.db_url}",
                 f"Redis:                          {self.redis_url or '(not started: state in process)'}"]
        for n in self.nodes:
            lines.append(f"{n.name}: HTTP {n.url}  SIP 127.0.0.1:{n.sip_port}  RTP {n.rtp[0]}-{n.rtp[1]}  "
                         f"pid {n.proc.pid if n.proc else '-'}  log {self.root / n.name / 'serve.log'}")
        lines.append(f"logs and data: {self.root}")
        return "\n".join(lines)

    def stop(self) -> None:
        """Stop everything started, newest first (Kamailio and HAProxy before the nodes, the database last)."""
        while self.procs:
            proc = self.procs.pop()
            try:
                proc.stop()
            except Exception as e:  # stopping the rest matters more
                print(f"cluster: stopping {proc.name}: {e}", file=sys.stderr)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="./run cluster", description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", help="where data and logs go (default: a new temporary folder, removed at the end)")
    p.add_argument("--sip-port", type=int, default=5060, help="Kamailio's SIP port (default 5060; 0 = any free)")
    p.add_argument("--http-port", type=int, default=8000, help="HAProxy's HTTP port (default 8000; 0 = any free)")
    p.add_argument("--ping-interval", type=int, default=2, help="Kamailio's OPTIONS probe interval, seconds")
    args = p.parse_args(argv)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="ivr-cluster-"))
    cluster = LocalCluster(root, sip_port=args.sip_port, http_port=args.http_port, ping_interval=args.ping_interval)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"cluster: starting in {root} (PostgreSQL, Redis, 2 nodes, Kamailio, HAProxy) ...", file=sys.stderr)
    try:
        cluster.start()
        signal.signal(signal.SIGINT, lambda *_: done.set())
        print(cluster.addresses(), flush=True)
        print("Ctrl-C stops everything.", file=sys.stderr, flush=True)
        while not done.wait(1):
            for proc in cluster.procs:
                if not proc.alive() and not getattr(proc, "_reported", False):
                    proc._reported = True  # type: ignore[attr-defined]
                    print(f"cluster: {proc.name} exited ({proc.popen.returncode}); log {proc.log}", file=sys.stderr)
    except EngineError as e:
        print(f"cluster: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        print("cluster: stopping ...", file=sys.stderr)
        cluster.stop()
        if not args.dir:
            time.sleep(0.2)
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

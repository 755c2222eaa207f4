"""The engines of a local cluster as child processes: PostgreSQL (a private cluster made with initdb), Redis,
Kamailio and HAProxy, each with its log file, its own pid and a bounded stop. Used by :mod:`ivr.cluster.local`."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "cluster"


class EngineError(RuntimeError):
    """An engine is missing or did not start; the message says which and why (the log's tail)."""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A currently free loopback port."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(program: str, package: str) -> str:
    path = shutil.which(program) or (program if os.path.exists(program) else None)
    if not path:
        raise EngineError(f"{program} is missing: install the Debian package '{package}' (./run setup does)")
    return path


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc: Proc | None = None) -> None:
    """Poll ``check`` until true; fail with the process's log tail when it exits or time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.popen.poll() is not None:
            raise EngineError(f"{what} exited with {proc.popen.returncode}: {proc.tail()}")
        try:
            if check():
                return
        except Exception:  # not listening yet (refused, reset, timed out)
            pass
        time.sleep(0.2)
    raise EngineError(f"{what} not ready after {timeout:.0f} s: {proc.tail() if proc else ''}")


def tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Proc:
    """One child process and its log."""

    name: str
    popen: subprocess.Popen
    log: Path
    stop_signal: int = signal.SIGTERM
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def start(cls, name: str, args: list[str], log: Path, env: dict[str, str] | None = None,
              cwd: Path | None = None, user: str | None = None) -> Proc:
        out = log.open("ab")
        popen = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                 cwd=cwd, start_new_session=True,  # Ctrl-C reaches the orchestrator only
                                 user=user, group=user, extra_groups=[] if user else None)
        out.close()
        return cls(name, popen, log)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 2000) -> str:
        try:
            return self.log.read_text("utf-8", "replace")[-n:]
        except OSError:
            return ""

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self.popen.send_signal(self.stop_signal)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        for fn in self.on_stop:
            fn()

    def kill9(self) -> None:
        """The crash of a machine, as far as this process goes: SIGKILL, no clean-up."""
        self.popen.kill()
        self.popen.wait(5)


def start_postgres(root: Path, port: int) -> tuple[Proc, str]:
    """A private PostgreSQL cluster in ``root`` (as the postgres user when run as root) with a database ``ivr``;
    returns the process (postmaster) and the SQLAlchemy URL."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not dirs:
        raise EngineError("PostgreSQL is missing: install the Debian package 'postgresql' (./run setup does)")
    bindir = dirs[-1]
    root.mkdir(parents=True, exist_ok=True)
    as_root = os.geteuid() == 0
    pre = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    if not (data / "PG_VERSION").exists():
        r = subprocess.run(pre + [f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                                  "--locale=C"], capture_output=True, text=True, timeout=180)
        if r.returncode:
            raise EngineError(f"initdb failed: {r.stderr.strip() or r.stdout.strip()}")
    log = root / "postgres.log"
    if as_root:
        log.touch()
        shutil.chown(log, "postgres", "postgres")
    # the postmaster itself is the child (no runuser between): its stop signal reaches it
    proc = Proc.start("postgresql", [f"{bindir}/postgres", "-D", str(data), "-p", str(port), "-k", str(root),
                                     "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"], log,
                      cwd=root, user="postgres" if as_root else None)
    proc.stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, write a checkpoint
    wait_until(lambda: tcp_open(port) and subprocess.run(
        pre + [f"{bindir}/pg_isready", "-h", "127.0.0.1", "-p", str(port)], capture_output=True).returncode == 0,
        60, "PostgreSQL", proc)
    r = subprocess.run(pre + [f"{bindir}/psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-tAc",
                              "SELECT 1 FROM pg_database WHERE datname = 'ivr'"], capture_output=True, text=True)
    if r.stdout.strip() != "1":
        r = subprocess.run(pre + [f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "ivr"],
                           capture_output=True, text=True)
        if r.returncode:
            raise EngineError(f"createdb failed: {r.stderr.strip()}")
    return proc, f"postgresql+psycopg://postgres@127.0.0.1:{port}/ivr"


def start_redis(root: Path, port: int) -> tuple[Proc, str]:
    """A private Redis on loopback, nothing written to disk; returns the process and its URL."""
    exe = need("redis-server", "redis-server")
    root.mkdir(parents=True, exist_ok=True)
    proc = Proc.start("redis", [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(root), "--protected-mode", "yes"], root / "redis.log")
    wait_until(lambda: tcp_open(port), 20, "Redis", proc)
    return proc, f"redis://127.0.0.1:{port}/0"


def start_kamailio(root: Path, port: int, nodes: list[int], ping_interval: int, fr_timer_ms: int) -> Proc:
    """Kamailio with deploy/cluster/kamailio.cfg, its dispatcher set 1 = the nodes' SIP ports on loopback."""
    exe = need("kamailio", "kamailio")
    root.mkdir(parents=True, exist_ok=True)
    ds = root / "dispatcher.list"
    ds.write_text("".join(f"1 sip:127.0.0.1:{p} 0 0 duid=node{i}\n" for i, p in enumerate(nodes, 1)))
    log = root / "kamailio.log"
    proc = Proc.start("kamailio", [
        exe, "-f", str(DEPLOY / "kamailio.cfg"), "-DD", "-E", "-w", str(root), "-P", str(root / "kamailio.pid"),
        "-A", f"LISTEN=udp:127.0.0.1:{port}", "-A", f'DS_LIST="{ds}"', "-A", f"DS_PING_INTERVAL={ping_interval}",
        "-A", f"FR_TIMER_MS={fr_timer_ms}"], log)
    wait_until(lambda: "listening on" in proc.tail(10**6) or "INFO: <core>" in proc.tail(10**6), 20, "Kamailio", proc)
    return proc


def start_haproxy(root: Path, port: int, stats_port: int, node_http: list[int]) -> Proc:
    """HAProxy with deploy/cluster/haproxy.cfg; the addresses go in through the environment."""
    exe = need("haproxy", "haproxy")
    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, IVR_HTTP_BIND=f"127.0.0.1:{port}", IVR_HAPROXY_STATS=f"127.0.0.1:{stats_port}")
    for i, p in enumerate(node_http, 1):
        env[f"IVR_NODE{i}_HTTP"] = f"127.0.0.1:{p}"
    proc = Proc.start("haproxy", [exe, "-f", str(DEPLOY / "haproxy.cfg"), "-db"], root / "haproxy.log", env=env)
    proc.stop_signal = signal.SIGUSR1  # soft stop: finish the requests in flight
    wait_until(lambda: tcp_open(port), 20, "HAProxy", proc)
    return proc

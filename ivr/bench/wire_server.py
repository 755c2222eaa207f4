"""A real ``ivr serve`` for wire benchmarks and tests: a child process on free loopback ports, its CPU and memory.

CPU and RSS are read from /proc for the server and every process below it (recognition worker processes
included, when the server runs any), so the figures are the whole service's, not just its main process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ivr.bench.ports import reserve_port

_TCK = os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """``pid`` and its live descendants."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants."""
    total = 0.0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TCK
    return total


def rss_mb(pid: int) -> float:
    """Resident memory (MB) of ``pid`` and its live descendants."""
    total = 0.0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS"):
                    total += int(line.split()[1]) / 1024
                    break
        except OSError:
            continue
    return total


class ServeProcess:
    """``python -m ivr serve`` on free loopback ports with its own data dir; ``env`` adds IVR_* settings."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, max_calls: int = 8) -> None:
        self.data_dir = Path(data_dir)
        self.http_port = reserve_port()  # held for this process: no race with parallel tests and benchmarks
        self.sip_port = reserve_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.env = {**os.environ, "IVR_DATA_DIR": str(self.data_dir), "IVR_DEMO_DATA": "1",
                    "IVR_LOG_LEVEL": "WARNING", **(env or {})}
        self.env.pop("IVR_CONFIG", None)
        self.max_calls = max_calls
        self.proc: subprocess.Popen | None = None
        self.log_path = self.data_dir / "serve.log"

    @property
    def sip(self) -> tuple[str, int]:
        return ("127.0.0.1", self.sip_port)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout_s: float = 180.0) -> ServeProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ivr", "serve", "--host", "127.0.0.1", "--port", str(self.http_port),
             "--sip-port", str(self.sip_port), "--max-calls", str(self.max_calls)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(urllib.error.URLError, OSError):
                if urllib.request.urlopen(self.url + "/health", timeout=2).status == 200:
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"ivr serve exited ({self.proc.returncode}):\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ivr serve not healthy within {timeout_s:.0f} s:\n{self.log()}")
            time.sleep(0.3)

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self, grace_s: float = 40.0) -> None:
        """SIGTERM (graceful shutdown), then SIGKILL of the process group after ``grace_s``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

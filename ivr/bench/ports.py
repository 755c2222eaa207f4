"""Loopback ports for the peers that benchmarks and tests start (uvicorn, the SIP gateway, sipp, coturn, nginx...).

A port found free with ``bind(port 0)`` and then released is a race: the kernel hands the same ephemeral number to
the next ``bind(0)`` or outgoing connection of any process before the peer binds it. These ports therefore come from
below the ephemeral range (32768-60999 by default), and each one is held, for the life of the process that asked, by
an abstract Unix socket named after it: a second process (a parallel pytest worker, another benchmark) cannot take
it, and the kernel frees it when the process ends, however it ends.
"""

from __future__ import annotations

import os
import socket
import threading

LOW, HIGH = 20100, 32700  # below Linux's default ephemeral range (32768-60999) and above baresip's RTP ports (10000-20000)
_held: dict[int, socket.socket] = {}
_lock = threading.Lock()
_next = [0]


def _claim(port: int) -> socket.socket | None:
    """The abstract-socket claim on ``port`` (None when another process, or this one, holds it)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.bind(f"\0ivr-loopback-port-{port}")
    except OSError:
        s.close()
        return None
    return s


def _bindable(port: int) -> bool:
    """Nothing (that did not claim it) is bound to ``port`` on loopback, for UDP nor TCP."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def reserve_ports(count: int = 1, *, align: int = 1) -> int:
    """The first of ``count`` consecutive loopback ports (the first a multiple of ``align``), free for TCP and UDP
    and held by this process until it ends. ``reserve_ports(4, align=4)`` suits an RTP peer (even RTP port, RTCP
    on +1, video on +2/+3); a range option (coturn's relay ports, rtp_port_min..max) takes a block."""
    span = HIGH - LOW
    with _lock:
        if not _next[0]:  # each process starts at its own place: fewer claims to step over
            worker = os.environ.get("PYTEST_XDIST_WORKER", "").removeprefix("gw")
            seed = int(worker) * 1500 if worker.isdigit() else os.getpid() * 7919
            _next[0] = LOW + seed % span
        for _ in range(span):
            first = _next[0]
            first += -first % align
            if first + count > HIGH:
                first = LOW + -LOW % align
            _next[0] = first + count
            claims = []
            for port in range(first, first + count):
                claim = _claim(port) if port not in _held else None
                if claim is None or not _bindable(port):
                    if claim is not None:
                        claim.close()
                    break
                claims.append((port, claim))
            else:
                _held.update(claims)
                return first
            for _, claim in claims:
                claim.close()
    raise RuntimeError(f"no {count} free loopback ports in {LOW}-{HIGH}")


def reserve_port() -> int:
    """One loopback port free for TCP and UDP, held by this process until it ends (see ``reserve_ports``)."""
    return reserve_ports(1)

"""Loopback ports for test and benchmark peers (ivr/bench/ports.py): held per process, never handed out twice, free
for TCP and UDP, and outside the kernel's ephemeral range, so parallel pytest workers do not collide."""

from __future__ import annotations

import socket
import subprocess
import sys

from ivr.bench.ports import HIGH, LOW, reserve_port, reserve_ports

_OTHER = """
import sys
from ivr.bench.ports import _claim, reserve_port
taken = [int(p) for p in sys.argv[1:]]
print(sum(_claim(p) is None for p in taken), reserve_port() not in taken)
"""


def test_ports_are_free_distinct_and_below_the_ephemeral_range():
    low, high = (int(v) for v in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    ports = [reserve_port() for _ in range(20)]
    block = reserve_ports(4, align=4)
    assert block % 4 == 0
    taken = ports + list(range(block, block + 4))
    assert len(set(taken)) == len(taken)
    assert all(LOW <= p < HIGH and not low <= p <= high for p in taken)
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):  # a peer can bind every one of them
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", block + 3))


def test_another_process_cannot_take_a_held_port():
    taken = [reserve_port() for _ in range(5)]
    r = subprocess.run([sys.executable, "-c", _OTHER, *map(str, taken)], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["5", "True"], r.stdout + r.stderr  # all five refused; it gets another one


def test_a_port_in_use_is_skipped():
    from ivr.bench import ports

    reserve_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        for _ in range(50):  # bind the allocator's next candidate behind its back (a peer that did not ask)
            nxt = ports._next[0]
            try:
                busy.bind(("127.0.0.1", nxt))
                break
            except OSError:
                reserve_port()  # in use already: step past it
        assert reserve_port() != nxt

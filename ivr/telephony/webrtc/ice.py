"""Which local addresses aiortc offers as ICE host candidates.

aioice gathers host candidates on every interface address except 127.0.0.1, so a browser (or test client) on
the same machine cannot reach the bot over loopback. :func:`host_addresses` lets a call choose its addresses
explicitly; the choice is scoped to the current task with a context variable, so concurrent calls with
different choices do not interfere.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import aioice.ice

_override: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar("ivr_ice_hosts", default=None)
_original = aioice.ice.get_host_addresses


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    hosts = _override.get()
    if hosts is None:
        return _original(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    out: list[str] = []
    for h in hosts:
        if h == "*":
            out += [a for a in _original(use_ipv4=use_ipv4, use_ipv6=use_ipv6) if a not in out]
        elif h not in out and ((":" in h and use_ipv6) or (":" not in h and use_ipv4)):
            out.append(h)
    return out


aioice.ice.get_host_addresses = _get_host_addresses


def ice_hosts_for(bind_host: str, public_ip: str) -> tuple[str, ...] | None:
    """Addresses to gather on: ``public_ip`` (comma-separated, '*' = every interface) when set; else every
    interface, plus 127.0.0.1 when the service listens on loopback (a browser on the same machine)."""
    if public_ip.strip():
        return tuple(a.strip() for a in public_ip.split(",") if a.strip())
    if bind_host in ("127.0.0.1", "localhost"):
        return ("127.0.0.1", "*")
    if bind_host in ("0.0.0.0", "::", ""):
        return ("*", "127.0.0.1")
    return (bind_host,)


@contextlib.contextmanager
def host_addresses(hosts: tuple[str, ...] | None) -> Iterator[None]:
    """Within this block (and tasks started in it), gather ICE host candidates on ``hosts`` only."""
    token = _override.set(hosts)
    try:
        yield
    finally:
        _override.reset(token)

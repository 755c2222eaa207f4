"""Which local addresses aiortc offers as ICE host candidates.

aioice gathers host candidates on every interface address except 127.0.0.1, so a browser (or test client) on
the same machine cannot reach the bot over loopback. :func:`host_addresses` lets a call choose its addresses
explicitly; the choice is scoped to the current task with a context variable, so concurrent calls with
different choices do not interfere. The same scope can bind host candidates inside a UDP port range (aioice
itself always binds port 0): the firewall then needs only that range open.

:func:`ice_config` is the RTCConfiguration the pages get (``GET /api/webrtc/config``) and
:func:`rtc_configuration` the same for the bot's aiortc peer: STUN/TURN servers from ``ice_servers``, TURN REST
credentials made from ``turn_secret`` (coturn ``use-auth-secret``), and ``ice_transport_policy``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import errno
import hashlib
import hmac
import random
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import aioice.ice

if TYPE_CHECKING:
    from aiortc import RTCConfiguration

    from ivr.config import Settings

Endpoint = tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol]

_override: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar("ivr_ice_hosts", default=None)
_ports: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("ivr_ice_ports", default=None)
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


async def bind_udp_in_range(loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.DatagramProtocol],
                            host: str, ports: tuple[int, int],
                            **kwargs: Any) -> Endpoint:  # noqa: ANN401 — loop.create_datagram_endpoint's options
    """``loop.create_datagram_endpoint`` on the first free port of ``ports`` (inclusive, tried in random order)."""
    low, high = ports
    candidates = list(range(low, high + 1))
    random.shuffle(candidates)
    for port in candidates:
        try:
            return await loop.create_datagram_endpoint(factory, local_addr=(host, port), **kwargs)
        except OSError as e:
            if e.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
    raise OSError(errno.EADDRINUSE, f"no free UDP port in {low}-{high} on {host} (rtp_port_min/rtp_port_max)")


class _RangeLoop:
    """The running loop, except that port-0 datagram endpoints bind inside the scoped port range."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ports: tuple[int, int]) -> None:
        self._loop, self._range = loop, ports

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 — every other attribute of the real event loop
        return getattr(self._loop, name)

    async def create_datagram_endpoint(
        self, factory: Callable[[], asyncio.DatagramProtocol], local_addr: tuple[str, int] | None = None,
        **kwargs: Any,  # noqa: ANN401 — the loop's own options, passed on unchanged
    ) -> Endpoint:
        if local_addr is not None and local_addr[1] == 0:
            return await bind_udp_in_range(self._loop, factory, local_addr[0], self._range, **kwargs)
        return await self._loop.create_datagram_endpoint(factory, local_addr=local_addr, **kwargs)


class _AsyncioForAioice:
    """What aioice.ice sees as ``asyncio``: the real module, with the port range applied to its running loop."""

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 — every other name of the asyncio module
        return getattr(asyncio, name)

    @staticmethod
    def get_running_loop() -> asyncio.AbstractEventLoop | _RangeLoop:
        loop = asyncio.get_running_loop()
        ports = _ports.get()
        return loop if ports is None else _RangeLoop(loop, ports)


aioice.ice.asyncio = _AsyncioForAioice()  # type: ignore[assignment]


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


def port_range(settings: Settings | None) -> tuple[int, int] | None:
    """``(rtp_port_min, rtp_port_max)``, or None for any ephemeral port."""
    low, high = getattr(settings, "rtp_port_min", 0), getattr(settings, "rtp_port_max", 0)
    return (low, high) if low and high else None


@contextlib.contextmanager
def host_addresses(hosts: tuple[str, ...] | None, ports: tuple[int, int] | None = None) -> Iterator[None]:
    """Within this block (and tasks started in it), gather ICE host candidates on ``hosts`` only, bound to a port
    in ``ports`` (inclusive) when given."""
    token, ports_token = _override.set(hosts), _ports.set(ports)
    try:
        yield
    finally:
        _override.reset(token)
        _ports.reset(ports_token)


def turn_rest_credentials(secret: str, ttl_s: int, user: str = "ivr", now: float | None = None) -> tuple[str, str]:
    """coturn's TURN REST scheme: username ``<expiry>:<user>``, credential base64(HMAC-SHA1(secret, username))."""
    username = f"{int((time.time() if now is None else now) + ttl_s)}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_config(settings: Settings) -> dict[str, Any]:
    """The browser's RTCConfiguration: ``{"iceServers": [...], "iceTransportPolicy": "all"|"relay"}``."""
    servers: list[dict[str, Any]] = []
    for item in settings.ice_servers:
        entry = dict(item)
        urls = [entry["urls"]] if isinstance(entry["urls"], str) else list(entry["urls"])
        if settings.turn_secret and "username" not in entry and any(u.startswith("turn") for u in urls):
            entry["username"], entry["credential"] = turn_rest_credentials(settings.turn_secret, settings.turn_ttl_s)
        servers.append(entry)
    return {"iceServers": servers, "iceTransportPolicy": settings.ice_transport_policy}


def rtc_configuration(settings: Settings | None) -> RTCConfiguration:
    """The aiortc RTCConfiguration for the bot's peer (no servers: no STUN look-ups that would time out offline)."""
    from aiortc import RTCConfiguration, RTCIceServer

    if settings is None:
        return RTCConfiguration(iceServers=[])
    from aiortc.rtcconfiguration import RTCIceTransportPolicy

    cfg = ice_config(settings)
    servers = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
               for s in cfg["iceServers"]]
    policy = RTCIceTransportPolicy.RELAY if cfg["iceTransportPolicy"] == "relay" else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)

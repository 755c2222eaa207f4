"""A share per client address of what anonymous visitors can open (web chats, web-phone calls), so one client
cannot take every line or chat for everyone else (security audit: 8 WebRTC offers that never connect held all
``max_calls`` for ~20 s each; 500 chat sessions held every chat for 30 min).

The key is the client's address (:func:`ivr.web.security.client_ip`: the browser's behind a ``trusted_proxies``
proxy); an IPv6 address counts by its /64 (one host usually has the whole prefix). Loopback clients are not
limited: they are the operator's own tools and benchmarks, or a proxy not listed in ``trusted_proxies`` (then
every visitor looks the same and a limit would refuse them all; docs/security.md asks for ``trusted_proxies``).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from ivr.web.security import client_ip


def client_key(scope: Any, settings: Any) -> str | None:  # noqa: ANN401 - an ASGI scope, the Settings
    """The address a share is counted by, or None for a loopback client or no address (a unix socket, test
    clients): not limited."""
    try:
        addr = ipaddress.ip_address(client_ip(scope, settings))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_loopback:
        return None
    if addr.version == 6:
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


class ClientShare:
    """Live items (by id) per client key; a client holds at most ``capacity // fraction`` (at least 2)."""

    def __init__(self, capacity: int, fraction: int) -> None:
        self.capacity = capacity
        self.share = max(2, capacity // fraction)
        self.live: dict[str, str] = {}  # item id -> client key
        self._opening: Counter[str] = Counter()

    def full(self, key: str | None, alive: Callable[[str], bool] | None = None) -> bool:
        """This client already holds (or is opening) its share, while the service as a whole still has room
        (when it has none, the caller's own 503 applies to everyone alike)."""
        if alive is not None:
            for item in [i for i in self.live if not alive(i)]:
                self.live.pop(item, None)
        if key is None or len(self.live) + sum(self._opening.values()) >= self.capacity:
            return False
        return sum(k == key for k in self.live.values()) + self._opening[key] >= self.share

    @contextlib.contextmanager
    def opening(self, key: str | None) -> Iterator[None]:
        """Count an item being opened (across awaits), so parallel requests cannot slip past the share."""
        if key is None:
            yield
            return
        self._opening[key] += 1
        try:
            yield
        finally:
            self._opening[key] -= 1
            if self._opening[key] <= 0:
                del self._opening[key]

    def add(self, item: str, key: str | None) -> None:
        if key is not None:
            self.live[item] = key

    def drop(self, item: str) -> None:
        self.live.pop(item, None)

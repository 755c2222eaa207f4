"""The HTTP surface's guards, as pure ASGI middleware (nothing here reads a body it does not have to).

* :class:`BodyLimit`: a body larger than ``http_max_body_bytes`` gets 413 before it is read: a too-large
  ``Content-Length`` at once, a streamed (chunked) body as soon as the bytes counted pass the limit.
* :class:`HttpGuard`: CSRF checks on state-changing requests (POST/PUT/PATCH/DELETE): a body sent to ``/api/``
  must be ``application/json`` (else 415); an ``Origin`` (or, without one, a ``Referer``) must be this site's
  (else 403). Plus the security headers on every response (CSP, frame-ancestors, nosniff, Referrer-Policy, and
  HSTS when the request came over TLS).
* Who the client is: :func:`client_ip` and :func:`is_https` believe ``X-Forwarded-For`` / ``-Proto`` only from
  the ``trusted_proxies``.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from ivr.config import Settings
from ivr.lang import get_pack

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"microphone=(self), camera=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


@lru_cache(maxsize=32)
def _networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(s.strip(), strict=False) for s in spec.split(",") if s.strip())


def _trusted(settings: Settings, host: str | None) -> bool:
    if not host or not settings.trusted_proxies:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip in net for net in _networks(settings.trusted_proxies))


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers") or ():
        if k == name:
            return v.decode("latin-1")
    return None


def client_ip(scope: Scope, settings: Settings) -> str:
    """The client's address: the peer, or the last hop a trusted proxy names in ``X-Forwarded-For``."""
    peer = (scope.get("client") or ("", 0))[0] or ""
    if _trusted(settings, peer):
        fwd = _header(scope, b"x-forwarded-for")
        hops = [h.strip() for h in fwd.split(",") if h.strip()] if fwd else []
        while hops and _trusted(settings, hops[-1]):
            hops.pop()
        if hops:
            return hops[-1][:64]
    return peer


def is_https(scope: Scope, settings: Settings) -> bool:
    """The request came over TLS: to us, via a trusted proxy's ``X-Forwarded-Proto``, or ``https_only``."""
    if settings.https_only or scope.get("scheme") in ("https", "wss"):
        return True
    peer = (scope.get("client") or ("", 0))[0]
    proto = _header(scope, b"x-forwarded-proto")
    return bool(proto) and _trusted(settings, peer) and proto.split(",")[0].strip().lower() == "https"


async def _respond(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": data})


LINGER_BYTES = 8 * 1024 * 1024  # after a 413: body bytes read and dropped at most (lingering close)
LINGER_S = 1.0  # ... and for at most this long


class _TooLarge(Exception):
    pass


class BodyLimit:
    """413 for bodies over ``limit`` bytes, before they are read (``Content-Length``) or while they stream."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        try:
            too_big = declared is not None and int(declared) > self.limit
        except ValueError:
            await _respond(send, 400, {"error": "bad Content-Length"})
            return
        if too_big:
            await self._refuse(send, receive)
            return
        seen = 0
        started = answered = False

        async def counting_receive() -> Message:
            nonlocal seen, answered
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    if not started and not answered:
                        answered = True
                        await self._refuse(send, receive)
                    raise _TooLarge()
            return msg

        async def guarded_send(msg: Message) -> None:
            nonlocal started
            if answered:
                return  # the 413 went out; whatever the app says after the abort is dropped
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _TooLarge:
            if not answered and not started:
                await self._refuse(send, receive)
        except Exception:
            if not answered:
                raise

    async def _refuse(self, send: Send, receive: Receive) -> None:
        """413 with a lingering close: the status line and headers leave at once, then up to ``LINGER_BYTES`` /
        ``LINGER_S`` of the body still in flight is read and thrown away (memory stays flat) before the body of
        the answer ends the response and the connection closes. Closing with unread bytes makes the kernel
        send a reset, which can destroy the 413 before the client reads it."""
        data = json.dumps(self._body(), ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                                (b"connection", b"close")]})
        loop = asyncio.get_running_loop()
        deadline, drained = loop.time() + LINGER_S, 0
        while drained < LINGER_BYTES and (left := deadline - loop.time()) > 0:
            try:
                msg = await asyncio.wait_for(receive(), left)
            except TimeoutError:
                break
            if msg["type"] != "http.request":
                break
            drained += len(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        await send({"type": "http.response.body", "body": data})

    def _body(self) -> dict[str, Any]:
        return {"error": f"request body too large (limit {self.limit} bytes)", "limit_bytes": self.limit}


def same_origin(scope: Scope, settings: Settings, origin: str) -> bool:
    """``origin`` (an Origin or Referer value) names this site: same host[:port], and not plain http for https."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    host = _header(scope, b"host") or ""
    if not parts.netloc or parts.netloc.lower() != host.lower():
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and not is_https(scope, settings)


def _json_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return _header(scope, b"transfer-encoding") is not None


class HttpGuard:
    """CSRF checks (415/403) on state-changing requests and security headers on every response."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(HEADERS)
        if is_https(scope, self.settings):
            extra.append(HSTS)
        refusal = self.refusal(scope)
        if refusal is not None:
            status, message = refusal
            await _respond(send, status, {"error": message}, extra)
            return

        async def send_with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                names = {k.lower() for k, _ in msg.get("headers", [])}
                msg["headers"] = [*msg.get("headers", []), *((k, v) for k, v in extra if k not in names)]
            await send(msg)

        await self.app(scope, receive, send_with_headers)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """(status, message) when a state-changing request must be refused, else None."""
        if scope.get("method", "GET").upper() not in UNSAFE:
            return None
        path: str = scope.get("path", "")
        if path.startswith("/api/") and _has_body(scope) and not _json_type(_header(scope, b"content-type")):
            return 415, get_pack(self.settings.language).desk_text("web.bad_content_type")
        origin = _header(scope, b"origin")
        if origin is None or origin == "null":
            referer = _header(scope, b"referer")
            if origin is None and referer is None:
                return None  # not a browser form or fetch: nothing to forge
            origin = referer or origin
        if not same_origin(scope, self.settings, origin or ""):
            return 403, get_pack(self.settings.language).desk_text("web.cross_site")
        return None


def install(app: Any, settings: Settings) -> None:
    """Add the guards to ``app``: the CSRF checks and headers outermost (so a 413 carries the headers too), then
    the body limit, before anything reads the body."""
    app.add_middleware(BodyLimit, limit=settings.http_max_body_bytes)
    app.add_middleware(HttpGuard, settings=settings)


def bearer_ok(request: Any, token: str) -> bool:
    """``Authorization: Bearer <token>`` on ``request`` matches ``token`` (constant-time)."""
    got = request.headers.get("authorization", "")
    scheme, _, value = got.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())

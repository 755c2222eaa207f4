"""SIP transports (UDP, TCP) hardened in front of aiosipua's parser.

aiosipua silently drops what it cannot parse. A gateway on a PBX or trunk must answer what it can: a request
whose headers are unreadable, too large or of the wrong SIP version gets a 400/513/505 when a Via, Call-ID, From,
To and CSeq can still be found to route the reply (RFC 3261 §8.2, §21.5.14, §21.5.18); raw garbage is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field

from aiosipua import SipRequest, SipResponse
from aiosipua.transport import TcpSipTransport, UdpSipTransport, _response_destination

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024  # a sane INVITE is 1-3 KB; UDP SIP over 64 KB cannot exist
MAX_HEADER_LINE = 4096
_ROUTING = ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")
_REQUEST_LINE = re.compile(r"^([A-Za-z]+) (\S+) (SIP/\d+\.\d+)$")
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:(.*)$", re.IGNORECASE | re.MULTILINE)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def bad_content_length(data: bytes) -> bool:
    """True when a Content-Length is not 1*DIGIT, two disagree, or it promises more body than ``data`` holds
    (RFC 3261 §7.5, §18.3, §20.14: a UDP request with a short body is refused; over TCP the framing read exactly
    what a numeric Content-Length declared). aiosipua would take "abc", "-5", "+9" or "1_0" and parse on."""
    m = _BLANK_LINE.search(data)
    head, body = (data[:m.start()], data[m.end():]) if m else (data, b"")
    values = {v.strip() for v in _CONTENT_LENGTH.findall(head)}
    if not values:
        return False
    if len(values) > 1 or not all(v.isdigit() and v.isascii() for v in values):
        return True
    return int(values.pop()) > len(body)


def check_raw(data: bytes) -> tuple[int, str] | None:
    """(status, reason) when raw bytes are a request we must refuse before parsing, else None."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if len(data) > MAX_MESSAGE_BYTES:
        return 513, "Message Too Large"
    if any(len(line) > MAX_HEADER_LINE for line in head.split(b"\n")):
        return 513, "Message Too Large"
    m = _REQUEST_LINE.match(first)
    if m and m.group(3) != "SIP/2.0":
        return 505, "Version Not Supported"
    if bad_content_length(data):
        return 400, "Bad Content-Length"
    return None


def salvage_reply(data: bytes, status: int, reason: str) -> SipResponse | None:
    """Build a reply from whatever routing headers can be read in a message we refuse; None if unroutable."""
    text = data[:MAX_MESSAGE_BYTES * 4].decode("utf-8", "replace")
    head = re.split(r"\r?\n\r?\n", text, maxsplit=1)[0]
    lines = head.replace("\r\n", "\n").split("\n")
    if not lines or lines[0].startswith("SIP/") or not _REQUEST_LINE.match(lines[0].strip()):
        return None  # not a request: never answer a response or noise
    found: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        key = name.strip().lower()
        if sep and key in _ROUTING and len(value) <= MAX_HEADER_LINE and "\r" not in value.strip():  # bare CR: unsafe
            key = {"v": "via", "f": "from", "t": "to", "i": "call-id"}.get(key, key)
            found.setdefault(key, []).append(value.strip())
    if not {"via", "call-id", "cseq", "from", "to"} <= found.keys():
        return None
    resp = SipResponse(status_code=status, reason_phrase=reason)
    for v in found["via"]:
        resp.headers.append("Via", v)
    resp.headers.set_single("From", found["from"][0])
    to = found["to"][0]
    resp.headers.set_single("To", to if ";tag=" in to else f"{to};tag=ivr-reject")
    resp.headers.set_single("Call-ID", found["call-id"][0])
    resp.headers.set_single("CSeq", found["cseq"][0])
    return resp


class _GuardMixin:
    """Shared `_dispatch` guard for both transports."""

    rejected = 0  # messages refused before reaching the UA (for tests and metrics)

    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        refusal = check_raw(data)
        if refusal is None:
            try:
                msg = SipRequest.parse(data)
            except Exception:
                refusal = (400, "Bad Request")
            else:
                if isinstance(msg, SipRequest) and (not msg.method.isalpha() or not msg.headers.get("via")):
                    refusal = (400, "Bad Request")  # no Via: no reply can be routed (dropped below)
        if refusal is not None:
            self.rejected += 1
            resp = salvage_reply(data, *refusal)
            log.info("refused SIP message from %s: %s %s%s", addr[0], refusal[0], refusal[1],
                     "" if resp else " (unroutable, dropped)")
            if resp is not None:
                try:
                    self.send_reply(resp)  # type: ignore[attr-defined]
                except Exception as e:  # unroutable Via, closed connection
                    log.debug("could not send refusal: %s", e)
            return
        super()._dispatch(data, addr)  # type: ignore[misc]


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: GuardedUdpTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int] | tuple[str, int, int, int]) -> None:
        if data.strip(b"\r\n") == b"":
            return  # RFC 5626 keep-alive (CRLF ping over UDP)
        self._owner._dispatch(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP UDP error: %s", exc)


@dataclass
class GuardedUdpTransport(_GuardMixin, UdpSipTransport):
    """UDP SIP transport; binds port 0 to an ephemeral port and records the bound address."""

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), local_addr=self.local_addr)
        self._udp_transport = transport
        host, port = transport.get_extra_info("sockname")[:2]
        self.local_addr = (self.local_addr[0], int(port))


@dataclass
class GuardedTcpTransport(_GuardMixin, TcpSipTransport):
    """TCP SIP transport (Content-Length framing, 64 KB header cap from aiosipua).

    A reply made while a request is being handled goes back on that request's connection when its Via names no
    open connection (RFC 3261 §18.2.2); a later reply to a connection the caller closed is dropped (aiosipua
    routes by Via alone and raised "No TCP connection" into the call flow: fuzz findings).
    """

    _source: tuple[str, int] | None = field(default=None, init=False, repr=False)

    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        self._source = addr
        try:
            super()._dispatch(data, addr)
        finally:
            self._source = None

    def send_reply(self, response: SipResponse) -> None:
        dest = _response_destination(response)
        if dest is None or dest not in self._connections:
            if self._source in self._connections:
                self.send(response, self._source)
            else:  # the caller closed the connection (e.g. while we rang): nobody to tell; Timer H ends the call
                log.info("SIP %d not sent: the TCP connection is gone", response.status_code)
            return
        super().send_reply(response)

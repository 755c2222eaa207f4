"""Which source a call's RTP (and RTCP) socket accepts packets from.

Plain symmetric RTP (RFC 4961 style "send back to wherever packets come from") lets anyone who finds the port take
over the call: the bot's audio follows the newest source and injected speech or RFC 4733 keys are accepted. Here a
socket *latches* once:

* expected: the address the SDP names (``c=`` IP, ``m=`` port; RTCP: the next port);
* the first packet from that exact address, or from the same IP on another port (a NAT that rewrote the port),
  or from the IP that signalled the call (a phone behind NAT whose SDP names its private address), fixes the
  peer; the bot's audio goes there from then on (a later packet from the exact SDP address takes over from a
  port-rewritten source, never the other way round);
* every packet from any other source is dropped before parsing (RTP, RFC 4733, RTCP and STUN alike) and counted;
* only a re-INVITE whose SDP names a *different* address releases the latch (``expect``); a refresh or hold/resume
  with the same address keeps it.

RTCP follows the RTP latch (``leader``): it is accepted from the SDP's RTCP address (RTP port + 1), from the
latched RTP source itself, and, only when RTP latched to a NAT-rewritten source, from that source's IP on another
port. So before the caller's first RTP packet nobody else can claim the RTCP socket either.

Until the first packet the bot sends to the SDP address, never to a packet's source. With ``nat=False``
(``sip_rtp_nat_latch = false``) only the exact SDP address is ever accepted.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

MAX_LOGGED_SOURCES = 4  # foreign sources logged per call (the rest only counted)


def normalize_ip(ip: str) -> str:
    """Canonical text of an address literal (IPv4-mapped IPv6 as IPv4); anything else unchanged."""
    try:
        addr = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


class SourceLatch:
    """The source filter of one media socket."""

    def __init__(self, expected: tuple[str, int], extra_ips: Iterable[str] = (), name: str = "RTP",
                 nat: bool = True, leader: SourceLatch | None = None) -> None:
        self.name = name
        self.nat = nat  # False: only the exact SDP address latches (no same-IP or signalling-IP fallback)
        self.leader = leader  # RTCP: the RTP latch whose peer it follows
        self.dropped = 0
        self._logged: set[tuple[str, int]] = set()
        self.expect(expected, extra_ips)

    def expect(self, expected: tuple[str, int], extra_ips: Iterable[str] = ()) -> None:
        """(Re)arm for the address an SDP names; the next admissible packet latches."""
        self.expected = (normalize_ip(expected[0]), expected[1])
        ips = {normalize_ip(expected[0]), *(normalize_ip(i) for i in extra_ips if i)}
        self.allowed_ips = {ip for ip in ips if ip not in ("0.0.0.0", "::", "")}
        self.latched: tuple[str, int] | None = None

    def admit(self, src: tuple[str, int]) -> bool:
        """True when a packet from ``src`` belongs to the call (latching on the first admissible one)."""
        peer = (normalize_ip(src[0]), src[1])
        if self.latched is not None:
            if peer == self.latched:
                return True
            if peer == self.expected:  # the exact SDP address outranks a same-IP source that came first
                log.info("%s latched to the SDP address %s:%d", self.name, *peer)
                self.latched = peer
                return True
        elif self._may_latch(peer):
            self.latched = peer
            if peer != self.expected:
                log.info("%s latched to %s:%d (SDP said %s:%d)", self.name, *peer, *self.expected)
            return True
        self.dropped += 1
        if peer not in self._logged and len(self._logged) < MAX_LOGGED_SOURCES:
            self._logged.add(peer)
            log.warning("%s from %s:%d ignored: the call's media comes from %s", self.name, *peer,
                        f"{self.latched[0]}:{self.latched[1]}" if self.latched else "the SDP address")
        return False

    def _may_latch(self, peer: tuple[str, int]) -> bool:
        if peer == self.expected:
            return True
        if self.leader is None:
            return self.nat and peer[0] in self.allowed_ips
        lead = self.leader.latched
        if lead is None:
            return False
        return peer == lead or (self.nat and lead != self.leader.expected and peer[0] == lead[0])

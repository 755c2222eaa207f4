"""Who a SIP caller is, and where a call's media may be sent (threat model: docs/sip.md, "Security").

* Caller identity: the From user of an INVITE is whatever the sender typed. It is only *trusted* when the INVITE
  came from a configured trusted peer (``sip_trusted_peers``: the trunk's or PBX's signalling addresses); from such
  a peer ``P-Asserted-Identity`` (RFC 3325) names the caller in preference to From. From anywhere else
  P-Asserted-Identity is ignored (anyone can write it) and the From user is a hint.
* Media target: the SDP ``c=`` address must be an IP literal of a unicast host, and never one of the gateway's own
  SIP or RTP ports on its own addresses (an offer pointing our RTP at ourselves would loop audio or packets
  through the gateway). The hold form ``c=0.0.0.0`` is accepted (nothing is sent while held).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable

from aiosipua import SipRequest

from ivr.telephony.sip.sdp import SdpError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
WITHHELD = {"anonymous", "unknown", "restricted", "private", "withheld"}
_URI = re.compile(r"<?\s*(sips?|tel):([^>;,\s]*)", re.IGNORECASE)


def in_networks(ip: str, networks: Iterable[Network]) -> bool:
    """True when ``ip`` (an address literal) lies in one of ``networks``."""
    try:
        addr = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == net.version and addr in net for net in networks)


def _uri_user(value: str) -> str:
    """The caller number in a name-addr/URI header value: the user of a sip:/sips: URI, or a tel: number."""
    m = _URI.search(value or "")
    if m is None:
        return ""
    scheme, rest = m.group(1).lower(), m.group(2)
    if scheme == "tel":
        return rest.strip()
    user, at, _host = rest.partition("@")
    return user.split(";")[0].strip() if at else ""


def caller_identity(request: SipRequest, source_ip: str, trusted: Iterable[Network]) -> tuple[str, bool]:
    """(caller number, trusted?) of an INVITE received from ``source_ip``.

    From a trusted peer the first P-Asserted-Identity URI (sip:/tel:) wins over From; elsewhere the header is
    ignored. A withheld number (RFC 3323 ``anonymous`` and friends) is "". Trusted means: a number, vouched
    for by a trusted peer."""
    from_peer = in_networks(source_ip, trusted)
    number = ""
    if from_peer:
        for value in request.headers.get("p-asserted-identity"):
            for part in value.split(","):
                number = _uri_user(part)
                if number:
                    break
            if number:
                break
    if not number and request.from_addr is not None and request.from_addr.uri is not None:
        number = request.from_addr.uri.user or ""
    if number.lower() in WITHHELD:
        number = ""
    return number, bool(from_peer and number)


# --- media targets ------------------------------------------------------------------------------------------

def is_local_address(ip: str, known: Iterable[str] = ()) -> bool:
    """True when ``ip`` is one of this host's addresses: loopback, one of ``known`` (bind host, advertised and
    public IPs), or any address a socket can bind to here."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_loopback or addr.is_unspecified or str(addr) in set(known):
        return True
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((str(addr), 0))  # only this host's own addresses can be bound
        return True
    except OSError:
        return False


def check_not_own_port(remote: tuple[str, int], own_ports: set[int], own_ips: Iterable[str]) -> None:
    """Raise :class:`SdpError` (488) when the media target is one of our own SIP/RTP/RTCP ports on one of our own
    addresses (a loop: the gateway would send its RTP to itself or into its SIP socket)."""
    ip, port = remote
    if port in own_ports and is_local_address(ip, own_ips):
        raise SdpError(488, "c=/m= names one of the gateway's own ports")

"""SDP offer/answer for G.711 + telephone-event (RFC 3264), on aiosipua's parser and negotiator."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from aiosipua import SdpMessage, negotiate_sdp, parse_sdp
from aiosipua.sdp import ConnectionData, MediaDescription, Origin, TimingField

SUPPORTED_PTS = {0: "PCMU", 8: "PCMA"}
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


class SdpError(Exception):
    """The offer cannot be answered; ``status`` is the SIP response to send (400 or 488)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class MediaOffer:
    """What we need from an audio offer."""

    sdp: SdpMessage
    remote: tuple[str, int]
    codec: str  # "PCMU" | "PCMA": the first offered codec we support (offerer's preference)
    payload_type: int
    dtmf_pt: int | None  # the offer's telephone-event payload type
    direction: str  # the offerer's direction
    hold: bool  # sendonly/inactive, or the old c=0.0.0.0 form


def parse_offer(text: str) -> MediaOffer:
    """Validate and digest an SDP offer; raises :class:`SdpError` (400 malformed, 488 unacceptable)."""
    if not text.lstrip().startswith("v=0"):
        raise SdpError(400, "malformed SDP (must start with v=0)")
    try:
        sdp = parse_sdp(text)
    except Exception as e:  # the parser raises ValueError/IndexError/KeyError on junk
        raise SdpError(400, f"malformed SDP ({type(e).__name__})") from None
    audio = sdp.audio
    if audio is None:
        raise SdpError(488, "no audio stream offered")
    conn = audio.connection or sdp.connection
    if conn is None or not conn.address:
        raise SdpError(400, "SDP has no connection address (c=)")
    check_media_address(conn.address)
    if not 0 < audio.port < 65536:
        raise SdpError(488, "audio stream is disabled (port 0)")
    if "RTP/AVP" not in audio.proto.upper() or "SAVP" in audio.proto.upper():
        raise SdpError(488, f"unsupported media profile {audio.proto}")
    codec = pt = None
    dtmf_pt = None
    for c in audio.codecs:
        name = (c.encoding_name or SUPPORTED_PTS.get(c.payload_type, "")).upper()
        if codec is None and name in ("PCMU", "PCMA") and (c.clock_rate in (0, 8000)):
            codec, pt = name, c.payload_type
        if name == "TELEPHONE-EVENT" and c.clock_rate in (0, 8000) and dtmf_pt is None:
            dtmf_pt = c.payload_type
    if codec is None or pt is None:
        offered = ", ".join(c.encoding_name or str(c.payload_type) for c in audio.codecs) or "none"
        raise SdpError(488, f"no common codec (offered {offered}; we take PCMU, PCMA)")
    direction = _direction(sdp, audio)
    hold = direction in ("sendonly", "inactive") or conn.address in ("0.0.0.0", "::")
    return MediaOffer(sdp, (conn.address, audio.port), codec, pt, dtmf_pt, direction, hold)


def build_answer(offer: MediaOffer, ip: str, port: int, rtcp_port: int | None, version: int) -> SdpMessage:
    """Answer mirroring the offer's m-lines (others rejected), our port, the chosen codec and DTMF type."""
    answer, _ = negotiate_sdp(
        offer=offer.sdp, local_ip=ip, rtp_port=port, supported_codecs=[offer.payload_type],
        dtmf_payload_type=offer.dtmf_pt or 0, session_name="ivr",
    )
    answer.origin.session_version = str(version)
    audio = answer.audio
    if audio is not None:
        if offer.hold and offer.direction not in ("sendonly", "inactive"):  # c=0.0.0.0 hold: answer recvonly
            for d in _DIRECTIONS:
                audio.attributes.pop(d, None)
            audio.attributes["recvonly"] = []
        if rtcp_port and rtcp_port != port + 1:
            audio.attributes["rtcp"] = [str(rtcp_port)]
    return answer


def build_offer(ip: str, port: int, rtcp_port: int | None = None, *, version: int = 1,
                codecs: tuple[str, ...] = ("PCMU", "PCMA")) -> SdpMessage:
    """Our offer for an outbound leg: ``codecs`` in order of preference (PCMU, PCMA), telephone-event 101."""
    sid = str(int(time.time()))
    pts = {"PCMU": 0, "PCMA": 8}
    order = [pts[c] for c in codecs]
    attrs: dict[str, list[str]] = {
        "rtpmap": [f"{pt} {SUPPORTED_PTS[pt]}/8000" for pt in order] + ["101 telephone-event/8000"],
        "fmtp": ["101 0-16"],
        "ptime": ["20"],
        "sendrecv": [],
    }
    if rtcp_port and rtcp_port != port + 1:
        attrs["rtcp"] = [str(rtcp_port)]
    media = MediaDescription(media="audio", port=port, proto="RTP/AVP", formats=[*map(str, order), "101"],
                             attributes=attrs)
    return SdpMessage(
        origin=Origin(username="-", session_id=sid, session_version=str(version), net_type="IN", addr_type="IP4",
                      address=ip),
        session_name="ivr", connection=ConnectionData(net_type="IN", addr_type="IP4", address=ip),
        timing=TimingField(start_time=0, stop_time=0), media=[media],
    )


def _direction(sdp: SdpMessage, audio: MediaDescription) -> str:
    for d in _DIRECTIONS:
        if d in audio.attributes:
            return d
    for d in _DIRECTIONS:
        if d in sdp.attributes:
            return d
    return "sendrecv"


def check_media_address(address: str) -> None:
    """Raise :class:`SdpError` (488) unless the c= address is an IP literal of a unicast host (or the hold
    address 0.0.0.0 / ::). Host names are refused: resolving them would make the gateway send its audio wherever
    a DNS answer points, and the offer could name any host."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise SdpError(488, f"c= must be an IP address, not {address[:64]!r}") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return  # c=0.0.0.0: hold (RFC 2543), nothing is sent
    if ip.is_multicast:
        raise SdpError(488, "c= is a multicast address")
    if isinstance(ip, ipaddress.IPv4Address) and ip.is_reserved:  # 240.0.0.0/4, 255.255.255.255
        raise SdpError(488, "c= is a broadcast or reserved address")

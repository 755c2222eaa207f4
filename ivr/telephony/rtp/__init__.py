"""RTP media for telephone calls: G.711 streams with a jitter buffer, RFC 4733 DTMF, 20 ms paced output."""

from ivr.telephony.rtp.stream import RtpStream, StreamConfig

__all__ = ["RtpStream", "StreamConfig"]

"""What a transport must provide to the call session (Pipecat-style: an input stream and an output sink).

A transport (``ivr.telephony.webrtc``, ``ivr.telephony.sip``, the in-process :class:`ivr.call.local.LocalPort`)
turns a network call into a :class:`CallPort`. The session pulls inbound events with ``await port.recv()`` and
pushes the bot's audio, already paced in 20 ms frames at ``port.info.sample_rate``, with
``await port.send_audio(frame)``. The transport never imports the session; the session never imports a transport.

Ports subclass :class:`CallPort` so the optional parts of the contract (``transfer``, ``flush``, ``ready``,
``notify``) have their defaults: no blind transfer, nothing buffered, media at once, nobody watching.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ivr.audio.frames import AudioFrame
from ivr.events import DtmfDigits, Hangup, Transcript

if TYPE_CHECKING:
    from ivr.call.notices import Notice

InboundEvent = AudioFrame | DtmfDigits | Hangup | Transcript


@dataclass(frozen=True, slots=True)
class CallInfo:
    call_id: str
    channel: str  # "webrtc" | "sip" | "replay" | "chat" | "agent"
    caller_id: str = ""  # raw caller number (mask before logging: ivr.privacy.mask_phone)
    sample_rate: int = 16000  # rate of frames in both directions
    language: str = "zh-CN"
    extra: dict[str, Any] = field(default_factory=dict)  # transport details: sip_call_id, codec, transfer_target
    caller_id_trusted: bool = False  # a trusted peer vouched for caller_id (SIP from sip_trusted_peers); else a hint


@runtime_checkable
class CallPort(Protocol):
    """One call's transport. Subclass it: the last four methods have working defaults."""

    info: CallInfo

    async def recv(self) -> InboundEvent:
        """Next inbound event: caller audio (20 ms frames, any size tolerated), DTMF, or Hangup (then no more).

        A network transport stamps each audio frame with ``frame.meta["rx_at"]``: the ``time.monotonic()`` arrival
        of the packet that carried its last sample (SIP: before the RTP jitter buffer and the 8 -> 16 kHz
        resampler; WebRTC: before aiortc's jitter buffer and decoder). A turn's trace starts there
        (:mod:`ivr.call.trace`); frames without it count from when the session took them."""
        ...

    async def send_audio(self, frame: AudioFrame) -> None:
        """Queue one frame of bot audio to the caller. The session paces calls in real time.

        A port with ``reports_on_air = True`` calls ``frame.meta["on_air"](at)``, when present, with the
        ``time.monotonic()`` the frame's first sample went to the network (the end of a turn's trace)."""
        ...

    async def hangup(self, reason: str = "") -> None:
        """Bot ends the call (idempotent)."""
        ...

    async def transfer(self, target: str) -> bool:
        """Blind-transfer to a target the transport understands (SIP URI); False if unsupported."""
        return False

    def flush(self) -> None:
        """Drop bot audio buffered inside the transport (barge-in): the caller stops hearing the bot now."""
        return None

    async def ready(self) -> bool:
        """Wait until media flows (WebRTC: ICE + DTLS); False if the caller left first."""
        return True

    def notify(self, notice: Notice) -> None:
        """Show the caller's screen what happens (state, transcripts, keys); must not block or raise."""
        return None


async def ready_or_ended(port: CallPort, ended: asyncio.Event, timeout_s: float) -> bool:
    """Wait until the port carries media (``port.ready()``); False on time-out or when the call ended first
    (a caller who hangs up before ICE connects frees the line at once, not after ``timeout_s``)."""
    ready, gone = asyncio.ensure_future(port.ready()), asyncio.ensure_future(ended.wait())
    try:
        await asyncio.wait({ready, gone}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (ready, gone):
            t.cancel()
        await asyncio.gather(ready, gone, return_exceptions=True)
    return ready.done() and not ready.cancelled() and ready.exception() is None and bool(ready.result()) \
        and not ended.is_set()

"""One WebRTC call as a :class:`~ivr.call.ports.CallPort`: an aiortc peer connection per caller.

* Caller audio: the remote track's frames (Opus 48 kHz stereo, or G.711 8 kHz) are mixed to mono and resampled
  to the call rate (16 kHz), then handed to the session.
* Bot audio: :class:`BotAudioTrack`, a pull-model track; aiortc's sender calls ``recv()`` and gets the session's
  paced 20 ms frames, resampled to 48 kHz (silence if the session falls behind, so the RTP clock never stops).
* DTMF, hang-up and live events use a data channel named ``ivr`` carrying JSON:
  page -> server ``{"type": "dtmf", "digits": "1"}``, ``{"type": "hangup"}``;
  server -> page ``{"type": "state"|"transcript"|"dtmf", ...}`` (see docs/call.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import SessionDescription

from ivr.audio.frames import AudioFrame
from ivr.audio.resample import RateConverter, Resampler
from ivr.call.notices import Notice, StateNotice
from ivr.call.ports import CallInfo, CallPort, InboundEvent
from ivr.events import DtmfDigits, Hangup
from ivr.telephony.adapters import aiortc_private
from ivr.telephony.webrtc.ice import host_addresses, port_range, rtc_configuration

if TYPE_CHECKING:
    from ivr.config import Settings

log = logging.getLogger(__name__)

OUT_RATE = 48000  # what aiortc's Opus encoder wants; G.711 encoders resample themselves
OUT_SAMPLES = OUT_RATE // 50  # 20 ms
DTMF_CHARS = set("0123456789*#ABCD")
MAX_SDP_BYTES = 64 * 1024
DISCONNECT_GRACE_S = 5.0  # "disconnected" may recover; "failed"/"closed" end the call at once
MEDIA_TIMEOUT_S = 6.0  # a browser sends audio all the time (silence too): none for this long = caller gone


RECV_PREFETCH = 1  # aiortc holds 4 audio packets (80 ms) before decoding; measured in docs/call.md (aiortc#775)


def tune_receiver_latency(pc: RTCPeerConnection, prefetch: int = RECV_PREFETCH) -> None:
    """Make aiortc's audio jitter buffer release packets after ``prefetch`` frames instead of 4.

    aiortc offers no option for this (it is a private attribute); barge-in needs the caller's voice early,
    and on the networks a softphone uses reordering beyond one packet is rare. Harmless if aiortc changes.
    """
    for t in pc.getTransceivers():
        if t.kind == "audio":
            aiortc_private.set_jitter_prefetch(t.receiver, prefetch)


class OfferError(Exception):
    """The offer cannot be answered. ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# How aiortc fails on malformed offers (its parser validates with ``assert``; odd sections surface as
# AttributeError/TypeError/StopIteration): a 400, not a 500 with a traceback (found by tests/test_fuzz_webrtc.py).
_MALFORMED = (ValueError, InvalidAccessError, InvalidStateError, InternalError, IndexError, KeyError,
              AssertionError, AttributeError, TypeError, RuntimeError, StopIteration)


def _check_offer(sdp: str) -> None:
    """400 for an offer aiortc would choke on later: unparsable, duplicate media ids, a BUNDLE group naming a
    mid no section has, or a section without a DTLS fingerprint (those fail in aiortc's background connect
    task, after the answer)."""
    try:
        desc = SessionDescription.parse(sdp)
    except _MALFORMED as e:
        raise OfferError(400, f"malformed SDP offer: {e or type(e).__name__}") from None
    mids = [m.rtp.muxId for m in desc.media if m.rtp.muxId]
    bundled = [mid for g in desc.group if g.semantic == "BUNDLE" for mid in g.items]
    if len(set(mids)) != len(mids) or any(mid not in mids for mid in bundled):
        raise OfferError(400, "malformed SDP offer: duplicate media ids or a BUNDLE group naming a missing one")
    if any(m.port and (m.dtls is None or not m.dtls.fingerprints) for m in desc.media):
        raise OfferError(400, "malformed SDP offer: a media section without a DTLS fingerprint")


class BotAudioTrack(MediaStreamTrack):
    """The bot's voice as an outgoing audio track (pull model: aiortc calls :meth:`recv` every 20 ms)."""

    kind = "audio"

    def __init__(self, in_rate: int) -> None:
        super().__init__()
        self._queue: asyncio.Queue[AudioFrame] = asyncio.Queue(maxsize=5)  # 100 ms: never a standing backlog
        self._resampler = Resampler(in_rate, OUT_RATE)
        self._in_rate = in_rate
        self._buf = np.zeros(0, dtype=np.int16)
        self._pts = 0
        self._time_base = fractions.Fraction(1, OUT_RATE)
        self._started: float | None = None
        self._marks: list[tuple[int, Callable[[float], None]]] = []  # (output sample, frame's meta["on_air"])
        self.frames_out = 0
        self.underruns = 0

    def push(self, frame: AudioFrame) -> None:
        """Queue a session frame (drops the oldest if the consumer is gone/slow, never blocks the session). A
        reply's first frame (``meta["on_air"]``) drops the idle silence queued ahead of it: heard up to 100 ms
        sooner."""
        if frame.meta.get("on_air") is not None and not any(f.pcm.strip(b"\0") for f in self._queue._queue):  # type: ignore[attr-defined]
            while not self._queue.empty():
                self._queue.get_nowait()
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
        self._queue.put_nowait(frame)

    def flush(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
        self._buf = np.zeros(0, dtype=np.int16)
        self._marks.clear()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        while len(self._buf) < OUT_SAMPLES:
            try:
                frame = await asyncio.wait_for(self._queue.get(), timeout=0.06)
            except TimeoutError:
                self.underruns += 1
                frame = AudioFrame.silence(0.02, self._in_rate)
            out = self._resampler.process(frame)
            on_air = frame.meta.get("on_air")
            if on_air is not None:
                self._marks.append((self._pts + len(self._buf), on_air))
            self._buf = np.concatenate([self._buf, out.to_numpy()])
        chunk, self._buf = self._buf[:OUT_SAMPLES], self._buf[OUT_SAMPLES:]
        af = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        af.sample_rate = OUT_RATE
        af.pts = self._pts
        af.time_base = self._time_base
        self._pts += OUT_SAMPLES
        self.frames_out += 1
        if self._marks:
            self._aired(time.monotonic())
        return af

    def _aired(self, at: float) -> None:
        """Frames whose first sample is in what aiortc now pulls (to encode and send at once) are on the air."""
        while self._marks and self._marks[0][0] < self._pts:
            _pos, on_air = self._marks.pop(0)
            try:
                on_air(at)
            except Exception:
                log.exception("on_air callback failed")


def _to_mono(frame: av.AudioFrame) -> AudioFrame:
    """An aiortc-decoded frame (s16 packed, 1-2 channels) as our mono AudioFrame at its own rate."""
    a = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        a = a.reshape(channels, -1).T
    else:
        a = a.reshape(-1, channels)
    if a.dtype.kind == "f":
        mono = a.mean(axis=1)
        return AudioFrame.from_numpy(mono, frame.sample_rate)
    mono = a.astype(np.int32).mean(axis=1).astype(np.int16) if channels > 1 else a[:, 0].astype(np.int16)
    return AudioFrame(mono.tobytes(), frame.sample_rate)


class WebRtcPort(CallPort):
    """CallPort over an aiortc peer connection. Create with :meth:`from_offer`."""

    reports_on_air = True  # a frame's ``meta["on_air"]`` is called when aiortc pulls its first sample to send

    def __init__(self, pc: RTCPeerConnection, info: CallInfo) -> None:
        self.pc = pc
        self.info = info
        self.track = BotAudioTrack(info.sample_rate)
        self._inbound: asyncio.Queue[InboundEvent] = asyncio.Queue()
        self._channel: Any = None
        self._pending_events: list[str] = []
        self._reader: asyncio.Task | None = None
        self._disconnect_timer: asyncio.TimerHandle | None = None
        self._ended = False
        self._closed = False
        self._connected = asyncio.Event()
        self.codec = ""
        self.frames_in = 0
        self._arrivals: aiortc_private.ArrivalStamps | None = None  # caller packets' arrival, for turn traces

    # --- signalling ----------------------------------------------------------------------------------------
    @classmethod
    async def from_offer(cls, sdp: object, kind: object, *, call_id: str | None = None, caller_id: str = "",
                         language: str = "zh-CN", sample_rate: int = 16000,
                         ice_hosts: tuple[str, ...] | None = None, extra: dict | None = None,
                         settings: Settings | None = None) -> tuple[WebRtcPort, dict]:
        """Answer a browser's offer. Returns the port and ``{"sdp", "type"}``; raises :class:`OfferError`.
        ``settings``: its ``ice_servers``/``ice_transport_policy`` and RTP port range apply to this peer."""
        if kind != "offer":
            raise OfferError(400, f'"type" must be "offer", got {kind!r}')
        if not isinstance(sdp, str) or not sdp.strip():
            raise OfferError(400, '"sdp" must be a non-empty string')
        if len(sdp) > MAX_SDP_BYTES:
            raise OfferError(413, f"offer too large ({len(sdp)} bytes, at most {MAX_SDP_BYTES})")
        if not sdp.lstrip().startswith("v=0"):
            raise OfferError(400, "not an SDP offer (it must start with v=0)")
        if "\nm=audio" not in sdp.replace("\r\n", "\n"):
            raise OfferError(422, "the offer has no audio (m=audio) section; the softphone must send a microphone track")
        _check_offer(sdp)
        info = CallInfo(call_id or uuid.uuid4().hex[:12], "webrtc", caller_id, sample_rate, language, extra or {})
        pc = RTCPeerConnection(rtc_configuration(settings))  # no servers configured: no STUN look-ups offline
        port = cls(pc, info)
        try:
            with host_addresses(ice_hosts, port_range(settings)):
                answer = await port._answer(sdp)
        except OfferError:
            await port.close()
            raise
        except OperationError as e:
            await port.close()
            raise OfferError(422, f"no audio codec in common (we accept opus, G722, PCMU, PCMA): {e}") from None
        except _MALFORMED as e:
            await port.close()
            raise OfferError(400, f"malformed SDP offer: {e or type(e).__name__}") from None
        return port, answer

    async def _answer(self, sdp: str) -> dict:
        pc = self.pc

        @pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and self._reader is None:
                self._reader = asyncio.create_task(self._read(track), name=f"webrtc-in-{self.info.call_id}")

        @pc.on("datachannel")
        def _on_datachannel(channel: RTCDataChannel) -> None:
            self._attach_channel(channel)

        @pc.on("connectionstatechange")
        async def _on_state() -> None:
            state = pc.connectionState
            log.debug("peer connection %s", state)
            if state in ("failed", "closed"):
                self._caller_gone(f"connection_{state}")
                self._connected.set()  # wake ready(); it reports the caller gone
            elif state == "disconnected":
                loop = asyncio.get_running_loop()
                self._disconnect_timer = loop.call_later(DISCONNECT_GRACE_S, self._caller_gone, "connection_lost")
            elif state == "connected":
                self._connected.set()
                if self._disconnect_timer is not None:
                    self._disconnect_timer.cancel()
                    self._disconnect_timer = None

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
        if not audio:
            raise OfferError(422, "the offer has no audio section")
        self._arrivals = aiortc_private.stamp_arrivals(audio[0].receiver)
        pc.addTrack(self.track)
        tune_receiver_latency(pc)
        for t in pc.getTransceivers():
            if t.kind == "video":
                t.direction = "inactive"
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        codecs = aiortc_private.negotiated_codecs(audio[0])
        self.codec = codecs[0].mimeType if codecs else ""
        return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}

    # --- inbound -------------------------------------------------------------------------------------------
    async def _read(self, track: MediaStreamTrack) -> None:
        to_call = RateConverter(self.info.sample_rate)
        try:
            while True:
                try:
                    frame = await asyncio.wait_for(track.recv(), MEDIA_TIMEOUT_S)
                except TimeoutError:
                    self._caller_gone("media_timeout")
                    return
                rx = self._arrivals.get(frame.pts) if self._arrivals is not None else None
                mono = to_call(_to_mono(frame))
                if rx is not None:  # the packet's arrival: the turn trace's jitter-buffer stage starts there
                    mono.meta["rx_at"] = rx
                self.frames_in += 1
                if mono.samples:
                    self._inbound.put_nowait(mono)
        except MediaStreamError:
            self._caller_gone("track_ended")

    def _attach_channel(self, channel: RTCDataChannel) -> None:
        if channel.label != "ivr":
            return
        self._channel = channel

        @channel.on("open")
        def _open() -> None:
            self._flush_events()

        @channel.on("message")
        def _message(msg: str | bytes) -> None:
            self.handle_message(msg)

        if channel.readyState == "open":
            self._flush_events()

    def handle_message(self, msg: object) -> str | None:
        """A JSON message from the page; returns an error text for bad messages (they are otherwise ignored)."""
        try:
            data = json.loads(msg) if isinstance(msg, str | bytes) else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return "expected a JSON object"
        kind = data.get("type")
        if kind == "dtmf":
            return self.press(str(data.get("digits", "")))
        if kind == "hangup":
            self._caller_gone("caller_hangup")
            return None
        return f"unknown message type {kind!r}"

    def press(self, digits: str) -> str | None:
        """Caller keyed ``digits``; returns an error text if they are not DTMF characters."""
        digits = digits.strip().upper()
        if not digits or len(digits) > 32 or not set(digits) <= DTMF_CHARS:
            return "digits must be 1-32 of 0-9 * # A-D"
        self._inbound.put_nowait(DtmfDigits(digits, time.monotonic()))
        return None

    def caller_hangup(self, reason: str = "caller_hangup") -> None:
        self._caller_gone(reason)

    def _caller_gone(self, reason: str) -> None:
        if not self._ended:
            self._ended = True
            self._inbound.put_nowait(Hangup("caller", reason, time.monotonic()))

    # --- CallPort --------------------------------------------------------------------------------------------
    async def ready(self) -> bool:
        """Wait until media flows (ICE + DTLS connected); False if the caller left first."""
        await self._connected.wait()
        return not self._ended

    async def recv(self) -> InboundEvent:
        return await self._inbound.get()

    async def send_audio(self, frame: AudioFrame) -> None:
        self.track.push(frame)

    def flush(self) -> None:
        """Drop bot audio buffered in the transport (barge-in)."""
        self.track.flush()

    async def hangup(self, reason: str = "") -> None:
        self._ended = True
        self.notify(StateNotice("ended", reason=reason))
        await asyncio.sleep(0.05)  # let the last event leave on the data channel
        await self.close()

    def notify(self, notice: Notice) -> None:
        """Sent as JSON on the data channel (queued until it opens)."""
        text = json.dumps(notice.as_dict(), ensure_ascii=False)
        ch = self._channel
        if ch is not None and ch.readyState == "open":
            with contextlib.suppress(Exception):
                ch.send(text)
        elif len(self._pending_events) < 200:
            self._pending_events.append(text)

    def _flush_events(self) -> None:
        ch = self._channel
        pending, self._pending_events = self._pending_events, []
        for text in pending:
            with contextlib.suppress(Exception):
                ch.send(text)

    async def close(self) -> None:
        """Close the peer connection and stop the reader (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._disconnect_timer is not None:
            self._disconnect_timer.cancel()
        self.track.stop()
        with contextlib.suppress(Exception):
            await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

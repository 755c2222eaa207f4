"""A WebRTC caller in Python (aiortc): what a browser softphone does, for tests, benchmarks and fixture replay
against a running ``ivr serve``.

    client = WebRtcClient()
    info = await client.call("http://127.0.0.1:8080")    # POST /api/calls/webrtc
    client.say(read_audio("hello.wav", 48000))            # paced in real time after what is queued
    client.press("1")                                     # DTMF over the data channel
    await client.hangup()
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time

import av
import httpx
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ivr.audio.frames import AudioFrame
from ivr.audio.resample import resample
from ivr.telephony.webrtc.ice import host_addresses
from ivr.telephony.webrtc.peer import tune_receiver_latency

RATE = 48000
FRAME = RATE // 50


class CallerTrack(MediaStreamTrack):
    """Microphone stand-in: 20 ms frames in real time, queued speech or silence. ``spoken_at`` keeps the
    monotonic time each queued clip started going out."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pcm = np.zeros(0, dtype=np.int16)
        self._t0: float | None = None
        self._n = 0
        self._marks: list[tuple[int, str]] = []  # (sample offset in the queue, label)
        self.spoken_at: dict[str, float] = {}

    def queue(self, audio: AudioFrame, label: str = "") -> None:
        a = resample(audio, RATE).to_numpy()
        if label:
            self._marks.append((len(self._pcm), label))
        self._pcm = np.concatenate([self._pcm, a])

    @property
    def idle(self) -> bool:
        return len(self._pcm) == 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.monotonic()
        due = self._t0 + self._n * 0.02
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        now = time.monotonic()
        if self._marks and self._marks[0][0] < FRAME:
            off, label = self._marks.pop(0)
            self.spoken_at[label] = now + off / RATE
        chunk, self._pcm = self._pcm[:FRAME], self._pcm[FRAME:]
        self._marks = [(o - FRAME, lab) for o, lab in self._marks]
        if len(chunk) < FRAME:
            chunk = np.concatenate([chunk, np.zeros(FRAME - len(chunk), dtype=np.int16)])
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._n * FRAME
        frame.time_base = fractions.Fraction(1, RATE)
        self._n += 1
        return frame


class WebRtcClient:
    """One call to the bot over WebRTC, with everything heard and seen kept for inspection."""

    def __init__(self, ice_hosts: tuple[str, ...] = ("127.0.0.1",)) -> None:
        self.ice_hosts = ice_hosts
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.mic = CallerTrack()
        self.channel = self.pc.createDataChannel("ivr")
        self.events: list[dict] = []
        self.heard: list[tuple[float, float]] = []  # (monotonic arrival, level dBFS) per received frame
        self.call_id = ""
        self._reader: asyncio.Task | None = None
        self._open = asyncio.Event()
        self.channel.on("open", self._open.set)
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)

    def _on_message(self, msg: str | bytes) -> None:
        with contextlib.suppress(ValueError):
            self.events.append(json.loads(msg))

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._reader is None:
            self._reader = asyncio.create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                f = await track.recv()
                a = f.to_ndarray().astype(np.float64) / 32768.0
                rms = float(np.sqrt(np.mean(a * a))) if a.size else 0.0
                self.heard.append((time.monotonic(), 20 * np.log10(rms) if rms > 0 else -120.0))

    async def call(self, base_url: str, timeout: float = 15.0) -> dict:
        """Offer, POST it, apply the answer. Raises httpx.HTTPStatusError on refusal (e.g. 503 when busy)."""
        self.pc.addTrack(self.mic)
        tune_receiver_latency(self.pc)
        with host_addresses(self.ice_hosts):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = {"sdp": self.pc.localDescription.sdp, "type": self.pc.localDescription.type}
        async with httpx.AsyncClient(timeout=timeout) as http:
            r = await http.post(f"{base_url.rstrip('/')}/api/calls/webrtc", json=offer)
            r.raise_for_status()
            answer = r.json()
        self.call_id = answer["call_id"]
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        await asyncio.wait_for(self._open.wait(), timeout)
        return answer

    def say(self, audio: AudioFrame, label: str = "") -> None:
        self.mic.queue(audio, label)

    def press(self, digits: str) -> None:
        self.channel.send(json.dumps({"type": "dtmf", "digits": digits}))

    def bot_lines(self) -> list[str]:
        return [e["text"] for e in self.events if e.get("type") == "transcript" and e.get("who") == "bot"]

    def state(self) -> str:
        states = [e["state"] for e in self.events if e.get("type") == "state"]
        return states[-1] if states else ""

    def voiced(self, threshold_dbfs: float = -45.0, after: float = 0.0) -> list[float]:
        """Arrival times of received frames louder than the threshold."""
        return [t for t, lvl in self.heard if lvl > threshold_dbfs and t >= after]

    async def wait_for(self, predicate, timeout: float = 30.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}; bot said {self.bot_lines()}")
            await asyncio.sleep(0.05)

    async def hangup(self) -> None:
        if self.channel.readyState == "open":
            self.channel.send(json.dumps({"type": "hangup"}))
            await asyncio.sleep(0.1)
        await self.close()

    async def close(self) -> None:
        self.mic.stop()
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)

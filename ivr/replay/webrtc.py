"""``--via webrtc``: the fixture's caller dials a running ``ivr serve`` like a browser softphone (aiortc).

Caller audio goes out as a real WebRTC audio track (resampled to 48 kHz, paced in real time), keys go over the
data channel, the bot's audio is measured as it arrives, and after the call the server's call record
(``GET /api/calls/{id}``) supplies what the bot heard, understood and did. The server recognises speech with its
own model (or runs keypad-only without one): reference transcripts can only be injected with ``--via direct``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

import httpx

from ivr.audio.frames import AudioFrame
from ivr.audio.resample import Resampler
from ivr.config import Settings
from ivr.replay.caller import BotAudio, LineReport, Pace, play_call
from ivr.replay.clock import now
from ivr.replay.loader import LoadedFixture
from ivr.replay.results import BotTurn, CallResult

log = logging.getLogger(__name__)
WEBRTC_RATE = 48000


class WebRtcLine:
    """A caller line over WebRTC to ``server`` (see module docstring)."""

    settings: Settings | None = None  # the server's settings (its secret opens the call record)

    def __init__(self, server: str, sample_rate: int) -> None:
        from ivr.telephony.webrtc.client import WebRtcClient

        self.server = server.rstrip("/")
        self.sample_rate = sample_rate
        self.bot_audio = BotAudio()
        self.ended = asyncio.Event()
        self.client = WebRtcClient()
        self._up = Resampler(sample_rate, WEBRTC_RATE)
        self._watch: asyncio.Task | None = None
        self._seen = 0

    async def dial(self) -> None:
        await self.client.call(self.server)
        self._watch = asyncio.create_task(self._watch_call(), name=f"webrtc-watch-{self.client.call_id}")

    async def _watch_call(self) -> None:
        """Feed the caller's ear (bot audio levels) and notice the bot hanging up."""
        from ivr.replay.caller import VOICED_DBFS

        while True:
            heard = self.client.heard
            for t, level in heard[self._seen :]:
                if level > VOICED_DBFS:
                    self.bot_audio.voiced.append(t)
            self._seen = len(heard)
            if any(e.get("type") == "state" and e.get("state") == "ended" for e in self.client.events):
                self.ended.set()
            if self.client.pc.connectionState in ("failed", "closed"):
                self.ended.set()
            await asyncio.sleep(0.01)

    async def send_audio(self, frame: AudioFrame) -> None:
        if not self.ended.is_set():
            self.client.say(self._up.process(frame))

    async def send_dtmf(self, digit: str) -> None:
        if not self.ended.is_set() and self.client.channel.readyState == "open":
            self.client.press(digit)

    async def hangup(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.hangup()

    async def finish(self) -> LineReport:
        with contextlib.suppress(Exception):
            await self.client.close()
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        return await fetch_record(self.server, self.client.call_id, settings=self.settings)


async def fetch_record(server: str, call_id: str, timeout: float = 20.0, settings: Settings | None = None) -> LineReport:
    """The finished call record from ``GET /api/calls/{id}`` as a :class:`LineReport` (records are not public:
    ``settings`` sharing the server's secret make the record token, :mod:`ivr.web.callaccess`)."""
    from ivr.web.callaccess import record_headers

    rep = LineReport(call_id=call_id)
    deadline = now() + timeout
    headers = record_headers(settings, call_id) if settings is not None else None
    async with httpx.AsyncClient(timeout=5, headers=headers) as http:
        while True:
            try:
                r = await http.get(f"{server}/api/calls/{call_id}")
                data: dict[str, Any] = r.json() if r.status_code == 200 else {}
            except (httpx.HTTPError, ValueError):
                data = {}
            if data and not data.get("live") or now() > deadline:
                break
            await asyncio.sleep(0.2)
    if not data:
        rep.notes.append(f"the server has no record of call {call_id}: only audio-level checks were possible")
        return rep
    rep.outcome, rep.ended_by, rep.end_reason = data.get("outcome", ""), data.get("ended_by", ""), data.get("end_reason", "")
    rep.asr_mode = data.get("asr_mode", "")
    if data.get("live"):
        rep.notes.append("the server's record was still open when the replay stopped waiting")
    for t in data.get("turns", []):
        if t.get("speaker", "bot") != "bot":
            continue
        rep.turns.append((datetime.fromisoformat(t["at"]), BotTurn(
            kind=t.get("kind", ""), caller_text=t.get("caller_text", ""), input_source=t.get("input_source", ""),
            text=t.get("bot_text", ""), intent=t.get("intent", ""), slots=dict(t.get("slots") or {}),
            actions=list(t.get("actions") or []), state=t.get("state", ""), barged_in=bool(t.get("barged_in")),
            latency_ms=t.get("latency_ms"), timing=dict(t.get("timing") or {}),
        )))
    return rep


class WebRtcContext:
    """Runs fixtures as WebRTC callers of a running server."""

    def __init__(self, settings: Settings, opts: Any) -> None:
        self.settings = settings
        self.opts = opts

    async def prepare(self, fixtures: list[LoadedFixture]) -> None:
        from ivr.replay.schema import ReplayUnavailable

        try:
            async with httpx.AsyncClient(timeout=5) as http:
                r = await http.get(f"{self.opts.server.rstrip('/')}/health")
        except httpx.HTTPError as e:
            raise ReplayUnavailable(f"no `ivr serve` answering at {self.opts.server} ({type(e).__name__}); start "
                                    "one (ivr serve) or pass --server URL") from None
        if r.status_code not in (200, 503):
            raise ReplayUnavailable(f"{self.opts.server}/health answered HTTP {r.status_code}")

    async def call(self, lf: LoadedFixture) -> CallResult:
        line = WebRtcLine(self.opts.server, lf.sample_rate)
        line.settings = self.settings
        pace: Pace = self.opts.pace
        try:
            result, _report = await play_call(lf, line, pace=pace)
        except httpx.HTTPStatusError as e:
            with contextlib.suppress(Exception):
                await line.client.close()
            return CallResult(fixture=lf.name, path=str(lf.path), via="webrtc", asr=self.opts.asr,
                              description=lf.fixture.description,
                              error=f"the server refused the call: HTTP {e.response.status_code} {e.response.text[:120]}")
        result.via, result.asr = "webrtc", "server"
        return result

    async def close(self) -> None:
        return None

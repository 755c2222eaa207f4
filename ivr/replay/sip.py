"""``--via sip``: the fixture's caller dials a running ``ivr serve --sip-port N`` like a desk phone behind a PBX.

The caller is the project's own SIP user agent (:class:`ivr.telephony.sip.SipGateway` on an ephemeral loopback
port, acting as UAC through ``dial``): an INVITE offering G.711 (A-law first, as on Chinese networks, then
mu-law) and telephone-event; caller audio goes out as paced 20 ms G.711 RTP, keys as RFC 4733 telephone-events,
the bot's RTP is decoded and measured as it arrives, and either side's BYE ends the call. The server's 200 OK
names its call record (``X-Ivr-Call-Id``), which ``GET /api/calls/{id}`` on ``--server`` then supplies (what
the bot heard, understood and did), as with ``--via webrtc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from ivr.audio.frames import AudioFrame
from ivr.config import Settings
from ivr.events import Hangup
from ivr.replay.caller import BotAudio, LineReport, Pace, play_call
from ivr.replay.loader import LoadedFixture
from ivr.replay.results import CallResult
from ivr.replay.webrtc import fetch_record

log = logging.getLogger(__name__)
CODECS = ("PCMA", "PCMU")


class SipLine:
    """A caller line over SIP to ``target`` (see module docstring)."""

    settings: Settings | None = None  # the server's settings (its secret opens the call record)

    def __init__(self, ua: Any, target: str, server: str, sample_rate: int, caller_id: str,
                 codecs: tuple[str, ...] = CODECS) -> None:
        self.ua = ua
        self.target = target
        self.server = server.rstrip("/")
        self.sample_rate = sample_rate
        self.caller_id = caller_id
        self.codecs = codecs
        self.bot_audio = BotAudio()
        self.ended = asyncio.Event()
        self.port: Any = None
        self._ear: asyncio.Task | None = None

    async def dial(self) -> None:
        self.port = await self.ua.dial(self.target, caller=self.caller_id or "anonymous", codecs=self.codecs)
        self._ear = asyncio.create_task(self._listen(), name=f"sip-ear-{self.port.info.call_id}")

    async def _listen(self) -> None:
        """The caller's ear: every frame of bot audio, until the bot (or the line) hangs up."""
        while True:
            ev = await self.port.recv()
            if isinstance(ev, AudioFrame):
                self.bot_audio.feed(ev)
            elif isinstance(ev, Hangup):
                self.ended.set()
                return

    async def send_audio(self, frame: AudioFrame) -> None:
        if not self.ended.is_set():
            await self.port.send_audio(frame)

    async def send_dtmf(self, digit: str) -> None:
        if not self.ended.is_set():
            await self.port.send_dtmf(digit)

    async def hangup(self) -> None:
        if self.port is not None:
            await self.port.hangup("caller hung up")

    @property
    def call_id(self) -> str:
        return self.port.info.extra.get("remote_call_id", "") if self.port is not None else ""

    async def finish(self) -> LineReport:
        if self.port is not None:
            await self.port.hangup("replay finished")
        if self._ear is not None:
            self._ear.cancel()
            await asyncio.gather(self._ear, return_exceptions=True)
        if not self.call_id:
            return LineReport(notes=[f"{self.target} did not name its call record (no X-Ivr-Call-Id): "
                                     "only audio-level checks were possible"])
        return await fetch_record(self.server, self.call_id, settings=self.settings)


def sip_target(server: str, health: dict[str, Any], given: str = "") -> str:
    """The SIP URI to dial: ``given`` (``sip:user@host:port`` or ``host:port``), else the server's host and the
    SIP port its /health reports."""
    if given:
        t = given.strip().strip("<>")
        return t if t.startswith("sip:") else f"sip:ivr@{t}"
    host = urlsplit(server).hostname or "127.0.0.1"
    return f"sip:ivr@{host}:{health['sip']['port']}"


class SipContext:
    """Runs fixtures as SIP callers of a running server (one caller UA for all calls of the run)."""

    def __init__(self, settings: Settings, opts: Any) -> None:
        self.settings = settings
        self.opts = opts
        self.ua: Any = None
        self.target = ""

    async def prepare(self, fixtures: list[LoadedFixture]) -> None:
        from ivr.replay.schema import ReplayUnavailable
        from ivr.telephony.sip import SipGateway

        server = self.opts.server.rstrip("/")
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                r = await http.get(f"{server}/health")
            health = r.json()
        except (httpx.HTTPError, ValueError) as e:
            raise ReplayUnavailable(f"no `ivr serve` answering at {server} ({type(e).__name__}); start one "
                                    "(ivr serve --sip-port 5060) or pass --server URL (its call records are "
                                    "read from there)") from None
        if not self.opts.sip and not (health.get("sip") or {}).get("enabled"):
            raise ReplayUnavailable(f"the server at {server} has SIP disabled (sip_port 0): start it with "
                                    "`ivr serve --sip-port N`, or pass --sip sip:ivr@HOST:PORT")
        self.target = sip_target(server, health, self.opts.sip)
        host = urlsplit(server).hostname or "127.0.0.1"
        local = "127.0.0.1" if host in ("127.0.0.1", "localhost") else "0.0.0.0"
        caller_settings = self.settings.model_copy(update={
            "host": local, "sip_port": 0, "sip_register_uri": "", "sip_auth_user": "", "sip_allow_from": ""})

        async def no_inbound(port: Any) -> None:  # a caller's phone takes no calls
            await port.hangup("caller phone")

        self.ua = SipGateway(caller_settings, no_inbound, capacity=lambda: False)
        await self.ua.start()

    async def call(self, lf: LoadedFixture) -> CallResult:
        line = SipLine(self.ua, self.target, self.opts.server, lf.sample_rate, lf.fixture.caller_id,
                       codecs=tuple(self.opts.sip_codecs))
        line.settings = self.settings
        pace: Pace = self.opts.pace
        try:
            result, _report = await play_call(lf, line, pace=pace)
        except (RuntimeError, TimeoutError) as e:  # refused (e.g. 503 busy) or nobody answered
            with contextlib.suppress(Exception):
                await line.finish()
            return CallResult(fixture=lf.name, path=str(lf.path), via="sip", asr=self.opts.asr,
                              description=lf.fixture.description,
                              error=f"the SIP call to {self.target} failed: {e or type(e).__name__}")
        result.via, result.asr = "sip", "server"
        if line.port is not None:
            result.notes.append(f"SIP {line.port.info.extra.get('codec', '?')} to {self.target}, keys "
                                f"{line.port.stream.digits_sent or '-'} sent as RFC 4733 events")
        return result

    async def close(self) -> None:
        if self.ua is not None:
            await self.ua.stop()

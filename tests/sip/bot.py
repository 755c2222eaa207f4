"""A small real call handler for transport-level tests: plays an espeak-ng greeting, records the caller,
collects DTMF, and optionally hangs up or transfers. (The real call session lives in ivr/call.)"""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ivr.audio.files import read_audio
from ivr.audio.frames import AudioFrame, concat_frames, frames_of
from ivr.call.ports import CallPort
from ivr.events import DtmfDigits, Hangup


def espeak_wav(text: str, path: Path) -> Path:
    """Render Mandarin text with real espeak-ng."""
    wav = subprocess.run(["espeak-ng", "-v", "cmn-latn-pinyin", "--stdout", text], capture_output=True,
                         check=True, timeout=60).stdout
    path.write_bytes(wav)
    return path


@dataclass
class CallLog:
    port: CallPort
    inbound: list[AudioFrame] = field(default_factory=list)
    digits: str = ""
    hangup: Hangup | None = None
    transfer_result: bool | None = None
    greeting_sent: bool = False

    def inbound_audio(self) -> AudioFrame:
        return concat_frames(self.inbound) if self.inbound else AudioFrame(b"", 16000)


@dataclass
class Bot:
    greeting: AudioFrame
    hangup_after_greeting: bool = False
    transfer_to: str = ""  # transfer by REFER once the greeting has played
    calls: list[CallLog] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def from_text(cls, text: str, tmp: Path, **kw) -> Bot:
        return cls(read_audio(espeak_wav(text, tmp / "greeting.wav"), 16000), **kw)

    async def __call__(self, port: CallPort) -> None:
        log = CallLog(port)
        self.calls.append(log)
        player = asyncio.create_task(self._play(log))
        try:
            while True:
                ev = await port.recv()
                if isinstance(ev, Hangup):
                    log.hangup = ev
                    break
                if isinstance(ev, DtmfDigits):
                    log.digits += ev.digits
                elif isinstance(ev, AudioFrame):
                    log.inbound.append(ev)
        finally:
            player.cancel()
            self.done.set()

    async def _play(self, log: CallLog) -> None:
        for f in frames_of(self.greeting, 20):
            await log.port.send_audio(f)
        log.greeting_sent = True
        await asyncio.sleep(0.3)
        if self.transfer_to:
            log.transfer_result = await log.port.transfer(self.transfer_to)
        elif self.hangup_after_greeting:
            await log.port.hangup("goodbye")

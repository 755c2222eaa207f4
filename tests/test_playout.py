"""The call's paced playout (ivr/call/playout.py): a reply queued on an idle line goes out at once, not at the next
tick, and the frames after it keep the 20 ms spacing."""

from __future__ import annotations

import asyncio
import time

import pytest

from ivr.audio.frames import AudioFrame
from ivr.call.playout import Playout, Tag

RATE = 8000


@pytest.mark.realtime  # real pacing gaps: at nice 19 beside the parallel part a 200 ms tick once came 308 ms late
async def test_a_reply_on_an_idle_line_does_not_wait_for_the_next_tick():
    """With a 200 ms tick (so scheduling noise cannot hide it), a reply queued just after an idle frame went out is
    sent within a fraction of the tick; its following frames are a tick apart; idle frames before carried no tag.
    Streamed audio (a bridged agent, ``reply_id`` 0) keeps the clock's pace."""
    sent: list[tuple[float, Tag | None]] = []

    async def send(_frame: AudioFrame) -> None:
        sent.append((time.monotonic(), None))

    playout = Playout(send, RATE, frame_ms=200, on_sent=lambda _f, tag, at: sent.__setitem__(-1, (at, tag)))
    clock = asyncio.create_task(playout.run())
    try:
        while len(sent) < 2:  # two idle ticks
            await asyncio.sleep(0.005)
        queued_at = time.monotonic()
        playout.enqueue(AudioFrame(b"\x01\x02" * (RATE // 5 * 3), RATE), reply_id=7)  # three 200 ms frames
        while len(sent) < 5:
            await asyncio.sleep(0.005)
        while len(sent) < 7:  # the reply is out, the line idle again
            await asyncio.sleep(0.005)
        streamed_at = time.monotonic()
        playout.enqueue(AudioFrame(b"\x01\x02" * (RATE // 5), RATE), reply_id=0)  # bridged audio: on the clock
        while len(sent) < 8:
            await asyncio.sleep(0.005)
    finally:
        playout.closed = True
        clock.cancel()
    (t_first, first), (t_second, _), (t_third, _) = sent[2:5]
    assert all(tag is None for _t, tag in sent[:2])
    assert first == Tag(7, 0, 0)
    assert t_first - queued_at < 0.1, t_first - queued_at  # not the up to 200 ms wait for the next tick
    assert 0.15 < t_second - t_first < 0.3 and 0.15 < t_third - t_second < 0.3, (t_second - t_first, t_third - t_second)
    t_streamed, streamed = sent[7]
    assert streamed == Tag(0, 0, 0) and t_streamed - streamed_at > 0.1  # streamed audio waits for its tick


async def test_webrtc_track_drops_idle_silence_queued_ahead_of_a_reply():
    """aiortc pulls the bot's track every 20 ms: idle frames queued ahead of a reply's first frame (the one whose
    airing is reported) go, queued speech stays."""
    from ivr.telephony.webrtc.peer import BotAudioTrack

    track = BotAudioTrack(16000)
    silence, speech = AudioFrame.silence(0.02, 16000), AudioFrame(b"\x03\x04" * 320, 16000)
    for _ in range(3):
        track.push(silence)
    first = AudioFrame(b"\x01\x02" * 320, 16000)
    first.meta["on_air"] = lambda _at: None
    track.push(first)
    assert track._queue.qsize() == 1
    track.push(speech)
    track.push(first)
    assert track._queue.qsize() == 3

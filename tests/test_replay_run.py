"""Replaying fixtures through the real pipeline (in-process call session, real VAD/dialogue/shop/TTS).

Reference-transcript mode stands in for the recogniser because no Mandarin Vosk model can be installed here
(the only model is Korean); the Korean test at the end proves the real-ASR path with real Korean recordings
from ../shared and reports NOT RUN without them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import numpy as np
import pytest

from ivr.asr.vad import VadOptions
from ivr.audio.frames import AudioFrame, frames_of
from ivr.config import load_settings
from ivr.events import SpeechEnded, Transcript
from ivr.replay.clock import ScaledEventLoop, loop_factory
from ivr.replay.direct import ReferenceListener
from ivr.replay.loader import load_fixture, load_suite
from ivr.replay.runner import RunOptions, run_suite
from tests.conftest import ROOT, shared_path

SUITE = ROOT / "audio_fixtures"
CALLS = SUITE / "calls"
CI_SPEED = "2.5"  # the suite's turn-taking is unchanged; only latency figures need speed 1


def _run(fixtures, speed: float = 2.5, **kw):
    opts = RunOptions(speed=speed, **kw)
    with asyncio.Runner(loop_factory=loop_factory(speed)) as r:
        return r.run(run_suite(fixtures, load_settings(), opts, target="test"))


@pytest.mark.live  # 16 calls at once, 2.5x faster than real time: turn-taking needs the CPU (~60 % of a core)
def test_shipped_suite_passes_direct_reference(tmp_path):
    """Acceptance: every shipped fixture passes with --via direct --asr reference; reports are written."""
    html, js = tmp_path / "report.html", tmp_path / "report.json"
    r = subprocess.run(
        [sys.executable, "-m", "ivr", "replay", str(SUITE), "--via", "direct", "--asr", "reference",
         "--concurrency", "16", "--speed", CI_SPEED, "--report", str(html), "--no-progress"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    data = json.loads(js.read_text(encoding="utf-8")) if js.exists() else {}
    failures = [f for c in data.get("calls", []) for f in c["failures"]]
    assert r.returncode == 0, "\n".join(failures) or (r.stdout[-3000:] + r.stderr[-3000:])
    assert data["passed"] and data["summary"]["calls"] == len(list(CALLS.glob("*.yaml")))
    for call in data["calls"]:
        for t in call["turns"]:
            if t["kind"] == "say" and t["bot_turns"]:
                assert t["asr_mode"] == "reference", (call["fixture"], t["index"])
            if t["kind"] == "dtmf":
                assert t["asr_mode"] == "dtmf"
    by_name = {c["fixture"]: c for c in data["calls"]}
    barge = by_name["barge_in_greeting"]["turns"][1]
    assert barge["interrupted"] is True and barge["stop_ms"] is not None
    backchannel = [t for t in by_name["backchannel_keeps_bot_talking"]["turns"] if t["kind"] == "say"][-1]
    assert backchannel["interrupted"] is False  # the short 嗯 while the bot reads the order
    assert "return_created" in by_name["return_request_ok"]["actions"]
    page = html.read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "return_request_ok" in page and "PASS" in page
    assert "calls passed" in r.stdout


def test_wrong_expectation_names_the_turn_and_why(tmp_path):
    src = (CALLS / "promotions.yaml").read_text(encoding="utf-8")
    bad = (src.replace("intent: price_promotion", "intent: order_status").replace("- 优惠", "- 退货单号")
           .replace("- 活动", "- 换货单号"))
    assert bad != src
    audio = (CALLS.parent / "audio").resolve()
    (tmp_path / "wrong.yaml").write_text(bad.replace("../audio", str(audio)).replace(
        "name: promotions", "name: wrong_promotions"), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "ivr", "replay", str(tmp_path / "wrong.yaml"), "--speed", CI_SPEED,
                        "--output", str(tmp_path / "out.json"), "--no-progress"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    first = ("wrong_promotions: turns[0] (say '最近 有 什么 优惠 活动 吗'): intent: expected order_status, "
             "got price_promotion")
    assert first in r.stdout
    (call,) = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["calls"]
    assert call["passed"] is False
    fails = call["failures"]
    assert any(f.startswith(first) for f in fails), fails
    assert any("turns[0]" in f and "must contain one of '退货单号', '换货单号'" in f and "bot said '目前" in f
               for f in fails), fails
    assert call["turns"][0]["passed"] is True and call["turns"][1]["passed"] is False  # greeting fine, turn 0 not


def test_real_asr_without_model_is_reported_not_run():
    r = subprocess.run([sys.executable, "-m", "ivr", "replay", str(CALLS / "promotions.yaml"), "--asr", "real",
                        "--no-progress"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "not run: no zh-CN model installed (ivr models pull" in r.stdout.replace("\n", " ")


def test_sip_without_server_and_bad_options_are_clear_errors():
    """--via sip works (tests/test_replay_sip.py); with nothing listening it says so in one line."""
    r = subprocess.run([sys.executable, "-m", "ivr", "replay", str(CALLS), "--via", "sip", "--server",
                        "http://127.0.0.1:9"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no `ivr serve` answering at http://127.0.0.1:9" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "not available yet" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "ivr", "replay", str(CALLS), "--via", "webrtc", "--speed", "3"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--speed works only with --via direct" in r.stderr


async def test_reference_listener_emits_text_once_per_utterance_at_real_endpoints():
    lf = load_fixture(CALLS / "promotions.yaml")
    clip = lf.clips[0]
    rate = 16000
    listener = ReferenceListener(rate, VadOptions(), clock=lambda: 0.0)
    noise = AudioFrame.from_numpy(np.random.default_rng(3).normal(0, 0.3, rate // 2), rate)  # a loud burst
    stream = [AudioFrame.silence(1.0, rate), noise, AudioFrame.silence(1.0, rate)]
    start = sum(f.duration for f in stream)
    listener.expect(0, "最近 有 什么 优惠 活动 吗", start + clip.speech_start_s, start + clip.audio.duration)
    stream += [clip.audio, AudioFrame.silence(1.5, rate)]
    events, pts = [], 0.0
    for part in stream:
        for f in frames_of(AudioFrame(part.pcm, rate, pts)):
            events += await listener.push(f)
        pts += part.duration
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    texts = [e for e in events if isinstance(e, Transcript)]
    assert len(ends) == 2, "the noise burst and the utterance are both endpoints of the real VAD"
    assert [t.text for t in texts] == ["最近 有 什么 优惠 活动 吗"] and texts[0].source == "reference"
    assert events.index(texts[0]) == events.index(ends[1]) + 1
    assert listener.unmatched == 1 and listener.segments == {0: 1}


@pytest.mark.realtime  # compares call time with wall-clock time
def test_scaled_loop_runs_timers_faster():
    async def sleeper():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(2.0)
        return loop.time() - t0

    import time

    with asyncio.Runner(loop_factory=lambda: ScaledEventLoop(4.0)) as r:
        real0 = time.monotonic()
        call_time = r.run(sleeper())
        real = time.monotonic() - real0
    assert call_time >= 2.0
    assert real < call_time  # the same 2 s of call time took less real time


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.live  # real Vosk at 2x real time (0.4 of a core): at nice 19 on a loaded machine a final came after its turn
def test_real_asr_path_with_korean_recordings(tmp_path, monkeypatch):
    """Real Vosk (Korean model from PyPI) on real Korean speech played into a call: the bot's record shows
    ASR-mode turns whose text matches the recordings (the zh-CN dialogue does not understand Korean, so only
    recognition is checked)."""
    ko = shared_path("speech", "ko")
    # One call, one utterance at a time: the recogniser made for the first utterance serves the second. The default
    # pool of 2 warmed two up front and two more behind the takes (~9 CPU-s) for these two utterances.
    monkeypatch.setenv("IVR_ASR_POOL_SIZE", "0")
    rows = [line.split("\t") for line in (ko / "manifest.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    picks = [r for r in rows if r[0].startswith("kaldi_recipes__kaldi_recipes_my_record_test0")][:2]
    turns = "".join(f"  - say: {ko / f}\n    text: {text}\n    expect: {{max_cer: 0.5}}\n" for f, text, *_ in picks)
    (tmp_path / "ko.yaml").write_text(f"language: ko-KR\nturns:\n{turns}  - hangup: true\n", encoding="utf-8")
    suite = _run(load_suite(tmp_path), speed=2.0, asr="real")
    (call,) = suite.calls
    assert not call.error, call.error
    said = [t for t in call.turns if t.kind == "say"]
    assert all(t.asr_mode == "asr" for t in said), [t.asr_mode for t in said]
    assert all(t.cer is not None and t.cer <= 0.5 for t in said), [(t.heard, t.cer) for t in said]
    assert call.passed, call.all_failures

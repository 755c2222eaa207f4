"""Bad fixtures are rejected before any call starts, with one line naming the file, the key and why."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ivr.audio.files import write_wav
from ivr.audio.frames import AudioFrame
from ivr.replay.loader import FixtureError, load_fixture, load_suite, speech_bounds
from tests.conftest import ROOT

CLIP = ROOT / "audio_fixtures" / "audio" / "promotions" / "01.flac"


def _fixture(tmp_path, body: str, name: str = "call.yaml"):
    p = tmp_path / name
    p.write_text(body.replace("CLIP", str(CLIP)), encoding="utf-8")
    return p


GOOD = """
caller_id: "13800138000"
turns:
  - say: CLIP
    text: 最近 有 什么 优惠 活动 吗
    expect: {intent: price_promotion}
  - hangup: true
"""


def _problems(path) -> list[str]:
    with pytest.raises(FixtureError) as e:
        load_fixture(path)
    return e.value.problems


def test_good_fixture_loads(tmp_path):
    lf = load_fixture(_fixture(tmp_path, GOOD))
    assert lf.name == "call" and lf.sample_rate == 16000 and 0 in lf.clips
    assert lf.fixture.turns[0].expect.intent == "price_promotion"


def test_unknown_keys_are_named(tmp_path):
    p = _fixture(tmp_path, GOOD.replace("expect: {intent: price_promotion}", "expect: {intnet: price_promotion}"))
    assert _problems(p) == [f"{p}: turns[0].expect.intnet: unknown key"]
    p = _fixture(tmp_path, "colour: blue\n" + GOOD, "top.yaml")
    assert _problems(p) == [f"{p}: colour: unknown key"]


def test_missing_audio_names_turn_and_file(tmp_path):
    p = _fixture(tmp_path, GOOD.replace("CLIP", "nope/missing.wav"))
    (msg,) = _problems(p)
    assert msg.startswith(f"{p}: turns[0].say: 'nope/missing.wav'") and "no such file" in msg


def test_wrong_audio_format_is_rejected(tmp_path):
    (tmp_path / "notes.wav").write_text("this is not audio", encoding="utf-8")
    p = _fixture(tmp_path, GOOD.replace("CLIP", "notes.wav"))
    (msg,) = _problems(p)
    assert "turns[0].say: 'notes.wav'" in msg and "not a readable audio file" in msg
    write_wav(tmp_path / "quiet.wav", AudioFrame.silence(1.0, 16000))
    p = _fixture(tmp_path, GOOD.replace("CLIP", "quiet.wav"), "quiet.yaml")
    assert "is silent" in _problems(p)[0]


@pytest.mark.parametrize(
    "change,needle",
    [
        (("    text: 最近 有 什么 优惠 活动 吗\n", ""), "turns[0]: `say` needs its reference transcript in `text`"),
        (("  - hangup: true", "  - hangup: true\n    dtmf: '1'"), "turns[1]: a turn needs exactly one of say / dtmf / silence / hangup"),
        (("  - hangup: true", "  - dtmf: '12x'"), "turns[1]: dtmf '12x': only 0-9 * # A-D allowed"),
        (("  - hangup: true", "  - hangup: true\n  - dtmf: '1'"), "turns[1] hangs up but more turns follow"),
        (('caller_id: "13800138000"', "caller_id: call-me"), "caller_id: caller_id must be digits"),
        (("{intent: price_promotion}", "{max_latency_ms: -5}"), "turns[0].expect.max_latency_ms"),
    ],
)
def test_invalid_values_get_one_clear_line(tmp_path, change, needle):
    p = _fixture(tmp_path, GOOD.replace(*change))
    problems = _problems(p)
    assert any(needle in m for m in problems), problems
    assert all(m.startswith(str(p)) and "\n" not in m for m in problems)


def test_yaml_syntax_error_names_line(tmp_path):
    p = _fixture(tmp_path, "turns:\n  - say: [unclosed\n")
    assert "not valid YAML at line" in _problems(p)[0]


def test_suite_reports_every_bad_file_and_duplicate_names(tmp_path):
    _fixture(tmp_path, GOOD, "a.yaml")
    _fixture(tmp_path, GOOD.replace("CLIP", "gone.wav"), "b.yaml")
    _fixture(tmp_path, "name: a\n" + GOOD, "c.yaml")
    _fixture(tmp_path, GOOD.replace("turns:", "turnz:"), "d.yaml")
    with pytest.raises(FixtureError) as e:
        load_suite(tmp_path)
    text = "\n".join(e.value.problems)
    assert "b.yaml: turns[0].say: 'gone.wav'" in text
    assert "c.yaml: name: 'a' is already used" in text
    assert "d.yaml: turnz: unknown key" in text and "d.yaml: turns: required key missing" in text


def test_cli_rejects_bad_fixture_before_calling(tmp_path):
    _fixture(tmp_path, GOOD, "ok.yaml")
    _fixture(tmp_path, GOOD.replace("expect: {intent: price_promotion}", "expect: {intent: x, colour: 1}"), "bad.yaml")
    r = subprocess.run([sys.executable, "-m", "ivr", "replay", str(tmp_path), "--no-progress"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert f"{tmp_path / 'bad.yaml'}: turns[0].expect.colour: unknown key" in r.stderr
    assert "nothing was played" in r.stderr and "Traceback" not in r.stderr
    assert "ok" not in r.stdout  # no call result printed: nothing was dialled


def test_speech_bounds_find_the_speech():
    rate = 16000
    t = np.arange(int(0.5 * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 300 * t)
    x = np.concatenate([np.zeros(int(0.4 * rate)), tone, np.zeros(int(0.7 * rate))])
    x += np.random.default_rng(1).normal(0, 0.001, len(x))
    start, end = speech_bounds(AudioFrame.from_numpy(x, rate))
    assert abs(start - 0.4) <= 0.02 and abs(end - 0.9) <= 0.02


def test_cli_validate_only_checks(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ivr", "replay", str(ROOT / "audio_fixtures"), "--validate"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "fixture(s) valid" in r.stdout and "calls passed" not in r.stdout

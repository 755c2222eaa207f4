"""`ivr say`: the acceptance command and its one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import soundfile as sf

from ivr.audio.files import read_audio
from ivr.cli import main

TEXT = "您好，您的订单已经发货，预计明天送达"


def test_acceptance_8k_mandarin_wav(tmp_path):
    out = tmp_path / "x.wav"
    proc = subprocess.run([sys.executable, "-m", "ivr", "say", TEXT, "-o", str(out), "--rate", "8000", "--phonemes"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    info = sf.info(str(out))
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 8000, 1)
    assert 16 * 0.15 < info.duration < 16 * 0.5
    frame = read_audio(out, rate=None)
    assert frame.rms_dbfs() > -30
    # speech, not a constant tone or noise: loud and quiet 20 ms frames alternate (syllables and gaps)
    levels = [f.rms_dbfs() for f in _frames(frame, 160)]
    assert sum(v > -30 for v in levels) > 0.4 * len(levels) and sum(v < -45 for v in levels) >= 3
    # espeak-ng's own transcription printed by the command: 16 pinyin syllables, each with a tone contour
    phon = proc.stdout.strip().splitlines()[-1]
    sylls = [s for s in phon.split("_|") if s.strip()]
    assert len(sylls) == 16 and all(len(re.findall(r"(55|35|214|21|51|11|33)", s)) == 1 for s in sylls)
    assert "(en)" not in phon


def test_stdin_text_and_atomic_replace(tmp_path, monkeypatch, capsys):
    out = tmp_path / "y.wav"
    out.write_bytes(b"old")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("请问还有什么可以帮您？"))
    assert main(["say", "-", "-o", str(out), "--rate", "16000"]) == 0
    assert sf.info(str(out)).samplerate == 16000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y.wav"]  # no temporary files left behind
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["", "-o", "{d}/a.wav"], "empty"),
        (["   ", "-o", "{d}/a.wav"], "empty"),
        (["好" * 10_000, "-o", "{d}/a.wav"], "too long"),
        (["您好", "-o", "{d}/missing/a.wav"], "does not exist"),
        (["您好", "-o", "{d}"], "directory"),
        (["您好", "-o", "{d}/a.wav", "--rate", "44"], "--rate"),
        (["您好", "-o", "{d}/a.wav", "--rate", "8k"], "--rate"),
        (["您好", "-o", "{d}/a.wav", "--voice", "no-such-voice"], "unknown espeak-ng voice"),
        (["您好", "-o", "{d}/a.wav", "--speed", "5"], "tts_speed"),
    ],
)
def test_bad_input_one_line_error(tmp_path, capsys, args, needle):
    argv = ["say", *[a.replace("{d}", str(tmp_path)) for a in args]]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "a.wav").exists()


def test_unwritable_output_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["say", "您好", "-o", str(blocker / "a.wav")])  # parent is a file
    err = capsys.readouterr().err
    assert rc == 2 and "cannot write" in err and len(err.strip().splitlines()) == 1


def test_pyttsx3_backend_on_linux_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    if sys.platform in ("win32", "darwin"):
        pytest.skip("NOT RUN: this checks the Linux refusal")
    monkeypatch.setenv("IVR_TTS_BACKEND", "pyttsx3")
    rc = main(["say", "您好", "-o", str(tmp_path / "a.wav")])
    err = capsys.readouterr().err
    assert rc == 2 and "espeak" in err and len(err.strip().splitlines()) == 1


def _frames(frame, n):
    from ivr.audio.frames import AudioFrame

    for i in range(0, len(frame.pcm) - 2 * n, 2 * n):
        yield AudioFrame(frame.pcm[i : i + 2 * n], frame.sample_rate)

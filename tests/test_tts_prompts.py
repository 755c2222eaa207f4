"""Recorded prompts: a shop's <prompt_id>.wav replaces TTS for that prompt, whatever its format."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import soundfile as sf

from ivr.config import load_settings
from ivr.tts import get_tts

TEXT = "您好，欢迎致电本店客服。"


def tone(path, freq: float, rate: int, seconds: float = 1.0, channels: int = 1, subtype: str = "PCM_16") -> None:
    t = np.arange(int(rate * seconds)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    sf.write(str(path), np.repeat(x[:, None], channels, axis=1), rate, subtype=subtype)


def peak_hz(frame) -> float:
    spec = np.abs(np.fft.rfft(frame.to_float()))
    return float(np.fft.rfftfreq(frame.samples, 1 / frame.sample_rate)[spec.argmax()])


@pytest.fixture
def prompts(tmp_path):
    d = tmp_path / "prompts"
    d.mkdir()
    return d


@pytest.mark.parametrize("rate,channels,subtype", [(44100, 2, "PCM_24"), (8000, 1, "PCM_U8"), (48000, 1, "FLOAT")])
async def test_recording_replaces_tts_at_the_call_rate(prompts, rate, channels, subtype):
    tone(prompts / "welcome.wav", 440, rate, 1.0, channels, subtype)
    tts = get_tts(load_settings({"prompts_dir": str(prompts)}))
    for call_rate in (8000, 16000):
        frame = await tts.synthesize(TEXT, call_rate, prompt_id="welcome")
        assert frame.sample_rate == call_rate and frame.duration == pytest.approx(1.0, abs=0.01)
        assert peak_hz(frame) == pytest.approx(440, abs=3)
        streamed = [f async for f in tts.stream(TEXT, call_rate, prompt_id="welcome")]
        assert len(streamed) == 1 and streamed[0].pcm == frame.pcm


async def test_other_prompts_and_dynamic_text_still_use_tts(prompts):
    tone(prompts / "welcome.wav", 440, 16000)
    tts = get_tts(load_settings({"prompts_dir": str(prompts)}))
    spoken = await tts.synthesize(TEXT, 8000, prompt_id="goodbye")
    assert spoken.meta.get("phonemes") and spoken.duration > 1.5
    dynamic = await tts.synthesize(TEXT, 8000)
    assert dynamic.meta.get("phonemes")


async def test_damaged_recording_falls_back_to_tts(prompts, caplog):
    (prompts / "welcome.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    tts = get_tts(load_settings({"prompts_dir": str(prompts)}))
    with caplog.at_level(logging.WARNING):
        frame = await tts.synthesize(TEXT, 8000, prompt_id="welcome")
    assert frame.meta.get("phonemes") and frame.rms_dbfs() > -30
    assert "welcome" in caplog.text and "TTS" in caplog.text


async def test_replaced_recording_is_picked_up(prompts):
    path = prompts / "welcome.wav"
    tone(path, 440, 16000)
    tts = get_tts(load_settings({"prompts_dir": str(prompts)}))
    assert peak_hz(await tts.synthesize(TEXT, 8000, prompt_id="welcome")) == pytest.approx(440, abs=3)
    tone(path, 1000, 16000)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert peak_hz(await tts.synthesize(TEXT, 8000, prompt_id="welcome")) == pytest.approx(1000, abs=3)


@pytest.mark.parametrize("prompt_id", ["../welcome", "/etc/passwd", "a/../../b", ".hidden"])
async def test_prompt_ids_cannot_escape_the_directory(tmp_path, prompts, prompt_id):
    tone(tmp_path / "welcome.wav", 440, 16000)  # outside prompts_dir
    tts = get_tts(load_settings({"prompts_dir": str(prompts)}))
    frame = await tts.synthesize(TEXT, 8000, prompt_id=prompt_id)
    assert frame.meta.get("phonemes")  # spoken by TTS, the outside file is not used


async def test_missing_prompts_dir_means_tts(tmp_path):
    tts = get_tts(load_settings({"prompts_dir": str(tmp_path / "absent")}))
    assert (await tts.synthesize(TEXT, 8000, prompt_id="welcome")).meta.get("phonemes")

"""Deterministic test audio: Mandarin speech from the espeak-ng CLI with known silences between utterances.

Nothing binary is committed: clips are synthesised on first use and cached under ``$IVR_TEST_CACHE`` (default
``~/.cache/ivr-tests``), keyed by text, voice and espeak-ng version. The truth for each utterance is where its
speech energy lies inside the scene (espeak-ng output is clean, so a level threshold finds it exactly).
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from ivr.audio import g711
from ivr.audio.frames import AudioFrame
from ivr.audio.resample import resample

VOICE = "cmn-latn-pinyin"
ACTIVE_DBFS = -45.0  # 10 ms windows above this level are speech in clean synthetic audio


@dataclass(frozen=True)
class Utterance:
    text: str
    start: float  # seconds into the scene where speech energy begins
    end: float  # ... and ends


@dataclass(frozen=True)
class Scene:
    audio: AudioFrame
    utterances: list[Utterance]


def cache_dir() -> Path:
    d = Path(os.environ.get("IVR_TEST_CACHE", Path.home() / ".cache" / "ivr-tests"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@lru_cache(maxsize=1)
def espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True).stdout
    return out.split("Data at")[0].strip()


def synth(text: str, rate: int = 16000, voice: str = VOICE, speed: int = 175) -> AudioFrame:
    """Speech for ``text`` from the espeak-ng CLI at ``rate`` (cached WAV at espeak's own rate)."""
    key = hashlib.sha256(f"{espeak_version()}|{voice}|{speed}|{text}".encode()).hexdigest()[:20]
    path = cache_dir() / f"espeak-{key}.wav"
    if not path.exists():
        wav = subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True, check=True
        ).stdout
        data, sr = sf.read(io.BytesIO(wav), dtype="int16")
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        sf.write(str(tmp), data, sr, subtype="PCM_16", format="WAV")
        tmp.replace(path)
    data, sr = sf.read(str(path), dtype="int16")
    return resample(AudioFrame.from_numpy(data, sr), rate)


def speech_extent(frame: AudioFrame, threshold_dbfs: float = ACTIVE_DBFS) -> tuple[float, float]:
    """(start, end) seconds of the part of a clean clip whose 10 ms level exceeds the threshold."""
    x = frame.to_float().astype(np.float64)
    w = frame.sample_rate // 100
    n = len(x) // w
    rms = np.sqrt(np.mean(x[: n * w].reshape(n, w) ** 2, axis=1))
    active = np.nonzero(20 * np.log10(rms + 1e-12) > threshold_dbfs)[0]
    if not len(active):
        raise ValueError("clip has no speech")
    return active[0] * w / frame.sample_rate, (active[-1] + 1) * w / frame.sample_rate


def scene(
    parts: list[str | float | tuple[str, int]],
    rate: int = 16000,
    noise_dbfs: float = -60.0,
    seed: int = 0,
    voice: str = VOICE,
) -> Scene:
    """Concatenate utterances (text, or (text, espeak speed)) and silences (float seconds) over low white noise;
    returns the audio with the truth."""
    rng = np.random.default_rng(seed)
    pieces: list[np.ndarray] = []
    truth: list[Utterance] = []
    t = 0
    for p in parts:
        if isinstance(p, str | tuple):
            text, speed = (p, 175) if isinstance(p, str) else p
            clip = synth(text, rate, voice=voice, speed=speed)
            s, e = speech_extent(clip)
            truth.append(Utterance(text, t / rate + s, t / rate + e))
            a = clip.to_numpy().astype(np.float64)
        else:
            a = np.zeros(int(round(p * rate)))
        pieces.append(a)
        t += len(a)
    x = np.concatenate(pieces)
    noise = rng.normal(0.0, 32768 * 10 ** (noise_dbfs / 20), len(x))
    pcm = np.clip(x + noise, -32768, 32767).astype("<i2")
    return Scene(AudioFrame(pcm.tobytes(), rate), truth)


def telephone(frame: AudioFrame, codec: str = "PCMU") -> AudioFrame:
    """The carrier path: resample to 8 kHz and round-trip through G.711."""
    f8 = resample(frame, 8000)
    return g711.decode(codec, g711.encode(codec, f8))


def chunks(frame: AudioFrame, ms: float) -> list[AudioFrame]:
    """Split into chunks of ``ms`` (not necessarily a VAD frame size), with running pts."""
    n = max(1, int(round(frame.sample_rate * ms / 1000)))
    a = frame.to_numpy()
    return [
        AudioFrame(a[i : i + n].tobytes(), frame.sample_rate, frame.pts + i / frame.sample_rate)
        for i in range(0, len(a), n)
    ]


# Utterances a caller might say, each a single breath (no commas: internal pauses stay short).
CALLER_LINES = [
    "您好我想查一下我的订单",
    "订单号是幺二三四五六",
    "什么时候能发货",
    "我要退货",
    "好的谢谢再见",
]
# Backchannels: single syllables a caller makes while the bot talks; they must not interrupt it.
# Said quickly (espeak speed 220: 0.14-0.25 s of speech each), as callers do.
BACKCHANNELS = [("嗯", 220), ("对", 220), ("哦", 220), ("是", 220), ("好", 220)]
# Korean lines for the Korean Vosk model (the only model here). espeak-ng's Korean is far from natural, so tests
# compare our streaming path against a one-shot Vosk decode of the same audio rather than against the text.
# These three decode stably (the same text whatever the chunking); some other lines flip between hypotheses.
KO_LINES = [
    "배송은 언제 도착하나요",
    "안녕하세요 주문 번호를 알려 주세요",
    "감사합니다 좋은 하루 되세요",
]


def korean(text: str, rate: int = 16000) -> AudioFrame:
    """Korean speech from espeak-ng's ``ko`` voice."""
    return synth(text, rate, voice="ko")

"""G.711 mu-law (PCMU) and A-law (PCMA) for 8 kHz telephone audio, via the stdlib codec (audioop-lts on 3.13+)."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

from ivr.audio.frames import AudioFrame

G711_RATE = 8000


def ulaw_encode(frame: AudioFrame) -> bytes:
    _check(frame)
    return audioop.lin2ulaw(frame.pcm, 2)


def alaw_encode(frame: AudioFrame) -> bytes:
    _check(frame)
    return audioop.lin2alaw(frame.pcm, 2)


def ulaw_decode(payload: bytes, pts: float = 0.0) -> AudioFrame:
    return AudioFrame(audioop.ulaw2lin(payload, 2), G711_RATE, pts)


def alaw_decode(payload: bytes, pts: float = 0.0) -> AudioFrame:
    return AudioFrame(audioop.alaw2lin(payload, 2), G711_RATE, pts)


def encode(codec: str, frame: AudioFrame) -> bytes:
    """Encode with 'PCMU' or 'PCMA' (case-insensitive)."""
    c = codec.upper()
    if c == "PCMU":
        return ulaw_encode(frame)
    if c == "PCMA":
        return alaw_encode(frame)
    raise ValueError(f"unsupported G.711 codec {codec!r}")


def decode(codec: str, payload: bytes, pts: float = 0.0) -> AudioFrame:
    """Decode 'PCMU' or 'PCMA' payload to 8 kHz s16."""
    c = codec.upper()
    if c == "PCMU":
        return ulaw_decode(payload, pts)
    if c == "PCMA":
        return alaw_decode(payload, pts)
    raise ValueError(f"unsupported G.711 codec {codec!r}")


def _check(frame: AudioFrame) -> None:
    if frame.sample_rate != G711_RATE:
        raise ValueError(f"G.711 needs 8000 Hz audio, got {frame.sample_rate} Hz (resample first)")

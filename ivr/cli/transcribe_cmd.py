"""`ivr transcribe FILE`: VAD + Vosk over an audio file, one line per utterance."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from ivr.cli import UserError

CHUNK_MS = 20
MAX_CHANNELS = 2  # a caller's recording is mono or stereo; 5.1 audio is not a phone call


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transcribe", help="find utterances in an audio file and recognise them (Vosk)")
    p.add_argument("file", help="WAV/FLAC/OGG, any rate >= 8 kHz, mono or stereo")
    p.add_argument("--model", help="model name (`ivr models list`) or directory; default: asr_model or the "
                   "installed model for the configured language")
    p.add_argument("--json", action="store_true", help="JSON lines with word times and confidences")
    p.add_argument("--rate", type=int, choices=[8000, 16000],
                   help="process at this rate (8000 = telephone band); default: 8 kHz files at 8 kHz, others at 16 kHz")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ivr.asr.models import ModelError, find_model, resolve_model
    from ivr.audio.files import read_audio
    from ivr.config import get_settings

    settings = get_settings()
    info = _check_file(Path(args.file))
    try:
        if args.model:
            model_dir, _lang = resolve_model(args.model, settings)
        else:
            model_dir = find_model(settings.language, settings)
            if model_dir is None:
                raise UserError(
                    f"no speech model installed for {settings.language}: run `ivr models pull NAME` "
                    "(see `ivr models list`) or pass --model"
                )
    except ModelError as e:
        raise UserError(str(e)) from None
    rate = args.rate or (8000 if info.samplerate <= 8000 else 16000)
    audio = read_audio(args.file, rate)
    results = asyncio.run(_transcribe(audio, model_dir, settings))
    for r in results:
        if args.json:
            print(json.dumps(r, ensure_ascii=False))
        else:
            print(f"{r['start']:8.2f} {r['end']:8.2f}  {r['text']}")
    return 0


def _check_file(path: Path):
    """Reject what read_audio would accept but is no phone recording (multichannel)."""
    import soundfile as sf

    from ivr.audio.files import read_audio

    try:
        info = sf.info(str(path))
    except Exception:  # read_audio gives the precise one-line reason
        read_audio(path, None, max_seconds=0.01)
        raise UserError(f"{path}: not a readable audio file") from None
    if info.channels > MAX_CHANNELS:
        raise UserError(f"{path}: {info.channels} channels; expected a mono or stereo speech recording")
    return info


async def _transcribe(audio, model_dir: Path, settings) -> list[dict]:
    from ivr.asr.engine import AsrEngine
    from ivr.asr.listener import Listener
    from ivr.asr.vad import VadOptions
    from ivr.audio.frames import frames_of
    from ivr.events import SpeechEnded, Transcript

    # pool_size 0: the one recogniser is given back after each utterance and reused; a spare (~2 CPU-s to warm)
    # would never be used by a file read in order
    engine = AsrEngine.for_model(model_dir, audio.sample_rate, pool_size=0, max_workers=1)
    listener = Listener(audio.sample_rate, VadOptions.from_settings(settings), engine)
    out: list[dict] = []
    pending: SpeechEnded | None = None

    def collect(events) -> None:
        nonlocal pending
        for ev in events:
            if isinstance(ev, SpeechEnded):
                pending = ev
            elif isinstance(ev, Transcript) and ev.final and pending is not None:
                out.append({
                    "start": round(pending.start_pts, 2),
                    "end": round(pending.end_pts, 2),
                    "text": ev.text,
                    "confidence": round(ev.confidence, 3),
                    "words": [{"word": w.word, "start": w.start, "end": w.end, "conf": round(w.conf, 3)}
                              for w in ev.words],
                })
                pending = None

    try:
        for frame in frames_of(audio, CHUNK_MS, pad=False):
            collect(await listener.push(frame, now=frame.pts))
        collect(await listener.flush(now=audio.duration))
    finally:
        await listener.close()
        await engine.close()
    return out

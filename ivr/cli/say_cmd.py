"""`ivr say TEXT -o OUT.wav`: speech to a mono 16-bit WAV through the same engine the calls use."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

from ivr.cli import UserError

# ivr.audio.frames.SUPPORTED_RATES, for --help without importing numpy (tests/test_cli_conventions.py checks
# that the two agree; --rate itself is checked against the real one)
HELP_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("say", help="synthesise speech to a WAV file")
    p.add_argument("text", metavar="TEXT", help="what to say ('-' reads standard input)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.wav", help="WAV file to write (replaced atomically)")
    p.add_argument("--rate", default="16000", help=f"sample rate in Hz: {', '.join(map(str, HELP_RATES))} (default 16000)")
    p.add_argument("--voice", help="espeak-ng voice (default: setting tts_voice, cmn-latn-pinyin)")
    p.add_argument("--speed", help="words per minute, 80..450 (default: setting tts_speed)")
    p.add_argument("--phonemes", action="store_true", help="also print espeak-ng's phoneme transcription")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ivr.config import load_settings
    from ivr.tts import TtsError, get_tts
    from ivr.tts.text import clean_text

    rate = _parse_rate(args.rate)
    text = sys.stdin.read() if args.text == "-" else args.text
    out = Path(args.output)
    _check_output(out)
    settings = load_settings({"tts_voice": args.voice, "tts_speed": args.speed})
    try:
        engine = get_tts(settings)
        frame = asyncio.run(engine.synthesize(text, rate))
        phonemes = engine.backend.phonemes(clean_text(text), settings.tts_voice) if args.phonemes else None
    except TtsError as e:
        raise UserError(str(e)) from None
    except AttributeError:
        raise UserError(f"--phonemes needs the espeak backend, not {settings.tts_backend}") from None
    _write_wav_atomic(out, frame.to_numpy(), rate)
    print(f"wrote {out}: {frame.duration:.2f} s, {rate} Hz mono 16-bit, voice {settings.tts_voice}")
    if phonemes is not None:
        print(phonemes)
    return 0


def _parse_rate(value: str) -> int:
    from ivr.audio.frames import SUPPORTED_RATES

    try:
        rate = int(value)
    except ValueError:
        rate = -1
    if rate not in SUPPORTED_RATES:
        raise UserError(f"--rate {value!r}: use one of {', '.join(map(str, SUPPORTED_RATES))} Hz")
    return rate


def _check_output(out: Path) -> None:
    """Fail early (before synthesising) on an output path that cannot be written."""
    if out.is_dir():
        raise UserError(f"cannot write {out}: it is a directory")
    parent = out.parent
    if not parent.is_dir():
        raise UserError(f"cannot write {out}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {out}: directory {parent} is not writable")


def _write_wav_atomic(out: Path, samples, rate: int) -> None:
    """Write to a temporary file beside ``out`` and rename it over ``out`` (no half-written WAV ever)."""
    import soundfile as sf

    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        with os.fdopen(fd, "wb") as fh:
            sf.write(fh, samples, rate, format="WAV", subtype="PCM_16")
        os.replace(tmp, out)
        tmp = None
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)

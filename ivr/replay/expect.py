"""Check what a replayed call did against the fixture's expectations.

Every failure is one line that names the fixture, the turn (as ``turns[i]`` like the YAML, or ``greeting``),
what the caller did, which expectation failed, and what the bot actually did.
"""

from __future__ import annotations

from typing import Any

from ivr.replay.results import CallResult, TurnResult
from ivr.replay.schema import CallExpect, Fixture, TurnExpect


def _short(text: str, n: int = 60) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def turn_label(tr: TurnResult) -> str:
    """``turns[2] (say '我想退货')`` / ``greeting``."""
    if tr.kind == "greeting":
        return "greeting"
    what = {"say": f"say {_short(tr.input, 30)!r}", "dtmf": f"dtmf {tr.input!r}"}.get(tr.kind, tr.input)
    return f"turns[{tr.index}] ({what})"


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, (list, tuple)):
        return isinstance(actual, (list, tuple)) and [str(x) for x in expected] == [str(x) for x in actual]
    return str(expected) == str(actual)


def check_turn(fixture: str, exp: TurnExpect | None, tr: TurnResult) -> list[str]:
    """Failures of one turn (empty when every given expectation holds)."""
    if exp is None:
        return []
    where = f"{fixture}: {turn_label(tr)}"
    fails: list[str] = []
    main = tr.main
    reply = tr.reply
    said = f" (bot said {_short(reply)!r})" if reply else ""
    needs_reply = any(
        [exp.intent, exp.slots, exp.state, exp.reply_contains, exp.reply_contains_any, exp.actions, exp.max_latency_ms]
    )
    if exp.reply is False and (tr.bot_turns or tr.heard_ms is not None):
        fails.append(f"{where}: expected the bot to stay silent, but it replied{said or ' (bot audio heard)'}")
    if (exp.reply or needs_reply) and main is None:
        fails.append(f"{where}: expected a reply, but the bot said nothing")
        return fails
    if exp.intent is not None and main is not None:
        want = [exp.intent] if isinstance(exp.intent, str) else list(exp.intent)
        if main.intent not in want:
            fails.append(f"{where}: intent: expected {' or '.join(want)}, got {main.intent or 'none'}"
                         f" (heard {_short(main.caller_text, 30)!r}){said}")
    for key, value in exp.slots.items():
        got = next((t.slots[key] for t in tr.bot_turns if key in t.slots), None)
        if got is None:
            fails.append(f"{where}: slot {key}: expected {value!r}, but it was not filled{said}")
        elif not _same(value, got):
            fails.append(f"{where}: slot {key}: expected {value!r}, got {got!r}")
    if exp.state is not None and main is not None and exp.state not in main.state:
        fails.append(f"{where}: state: expected {exp.state!r}, got {main.state!r}")
    missing = [w for w in exp.reply_contains if w not in reply]
    if missing:
        fails.append(f"{where}: reply must contain {', '.join(map(repr, missing))}, bot said {_short(reply, 90)!r}")
    if exp.reply_contains_any and not any(w in reply for w in exp.reply_contains_any):
        fails.append(f"{where}: reply must contain one of {', '.join(map(repr, exp.reply_contains_any))}, "
                     f"bot said {_short(reply, 90)!r}")
    banned = [w for w in exp.reply_not_contains if w in reply]
    if banned:
        fails.append(f"{where}: reply must not contain {', '.join(map(repr, banned))}, bot said {_short(reply, 90)!r}")
    done = [a for t in tr.bot_turns for a in t.actions]
    lacking = [a for a in exp.actions if a not in done]
    if lacking:
        fails.append(f"{where}: action {', '.join(lacking)} expected, bot did {', '.join(done) or 'nothing'}{said}")
    wrong = [a for a in exp.no_actions if a in done]
    if wrong:
        fails.append(f"{where}: action {', '.join(wrong)} must not happen, but it did{said}")
    if exp.max_latency_ms is not None:
        if tr.heard_ms is None:
            fails.append(f"{where}: latency: no bot audio heard to measure (limit {exp.max_latency_ms:.0f} ms)")
        elif tr.heard_ms > exp.max_latency_ms:
            fails.append(f"{where}: latency {tr.heard_ms:.0f} ms over the limit {exp.max_latency_ms:.0f} ms "
                         f"(caller's speech end to first bot audio)")
    if exp.interrupted is not None and tr.interrupted is not None and exp.interrupted != tr.interrupted:
        fails.append(f"{where}: expected the bot's audio to {'stop' if exp.interrupted else 'keep playing'} when the "
                     f"caller spoke over it, but it {'kept playing' if exp.interrupted else 'stopped'}")
    elif exp.interrupted is not None and tr.interrupted is None:
        fails.append(f"{where}: barge-in could not be checked: the bot was not speaking when the caller started")
    if exp.max_stop_ms is not None and tr.stop_ms is not None and tr.stop_ms > exp.max_stop_ms:
        fails.append(f"{where}: bot audio stopped {tr.stop_ms:.0f} ms after the caller started, limit {exp.max_stop_ms:.0f} ms")
    if exp.max_cer is not None and tr.asr_mode == "asr":
        if tr.cer is None or tr.cer > exp.max_cer:
            fails.append(f"{where}: recognition: character error rate {tr.cer if tr.cer is not None else 1:.2f} over "
                         f"{exp.max_cer:.2f} (heard {_short(tr.heard, 40)!r})")
    if exp.end_call is not None and exp.end_call != tr.bot_hung_up:
        fails.append(f"{where}: expected the bot to {'end' if exp.end_call else 'continue'} the call, but it "
                     f"{'continued' if exp.end_call else 'hung up'}{said}")
    return fails


def check_call(fixture: Fixture, result: CallResult) -> list[str]:
    """Fill every turn's failures and return the call-level failures."""
    for tr in result.turns:
        exp = fixture.greeting if tr.kind == "greeting" else fixture.turns[tr.index].expect
        tr.expect = exp.model_dump(exclude_defaults=True) if exp is not None else {}
        tr.failures = check_turn(fixture.name, exp, tr)
    return check_call_level(fixture.name, fixture.expect, result)


def check_call_level(name: str, exp: CallExpect, result: CallResult) -> list[str]:
    fails: list[str] = []
    if exp.outcome is not None and exp.outcome != result.outcome:
        fails.append(f"{name}: call outcome: expected {exp.outcome}, got {result.outcome or 'unknown'}"
                     + (f" ({result.end_reason})" if result.end_reason else ""))
    if exp.ended_by is not None and exp.ended_by != result.ended_by:
        fails.append(f"{name}: call: expected the {exp.ended_by} to end the call, but it was ended by "
                     f"{result.ended_by or 'nobody (still open)'}" + (f" ({result.end_reason})" if result.end_reason else ""))
    lacking = [a for a in exp.actions if a not in result.actions]
    if lacking:
        fails.append(f"{name}: call: action {', '.join(lacking)} expected, the bot did {', '.join(result.actions) or 'nothing'}")
    wrong = [a for a in exp.no_actions if a in result.actions]
    if wrong:
        fails.append(f"{name}: call: action {', '.join(wrong)} must never happen, but it did")
    if exp.max_latency_ms is not None:
        for tr in result.turns:
            if tr.heard_ms is not None and tr.heard_ms > exp.max_latency_ms and tr.kind != "greeting":
                fails.append(f"{name}: {turn_label(tr)}: latency {tr.heard_ms:.0f} ms over the call limit "
                             f"{exp.max_latency_ms:.0f} ms")
    return fails

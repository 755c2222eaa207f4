"""`ivr chat`: a text console to the dialogue engine, and `ivr chat --script FILE` for scripted conversations.

Console input, one caller turn per line: text = what the caller said; an empty line = no input (silence);
`#dtmf 1234#` = keypad digits; `#played N F` = barge-in report (N segments started, last one F played);
`#hangup` or end of input = caller hangs up. With --json each bot turn is one JSON line
{"reply", "intent", "state", "actions", ...}. Every console conversation is stored as a call record (channel
``chat``, masked) like a voice call, so it shows on the dashboard; ``--no-record`` skips that.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid

from ivr.cli import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat", help="talk to the dialogue engine by text (or run scripted conversations)")
    p.add_argument("--caller-id", default="", help="the number the network shows: only a hint, it verifies nothing "
                   "(the caller still gives order number + phone tail)")
    p.add_argument("--trusted", action="store_true", help="simulate a call from a trusted SIP peer: the bot may say "
                   "that the caller ID has a recent order, nothing more (docs/security.md)")
    p.add_argument("--json", action="store_true", help="one JSON line per bot turn")
    p.add_argument("--script", nargs="+", metavar="FILE", help="run scripted conversation(s); exit 1 on a mismatch")
    p.add_argument("--no-asr", action="store_true", help="keypad-only call (as when speech recognition is down)")
    p.add_argument("--verbose", "-v", action="store_true", help="with --script: print every turn")
    p.add_argument("--no-record", action="store_true", help="do not store a call record of the conversation")
    p.set_defaults(func=run)


def _shop():
    from ivr.config import get_settings
    from ivr.services.shop import open_shop

    return open_shop(get_settings())


def run(args: argparse.Namespace) -> int:
    if args.script:
        return _run_scripts(args)
    return _console(args)


def _emit(reply, as_json: bool, manager) -> None:
    if as_json:
        line = reply.as_json()
        line.update(expect=reply.expect, reply_id=reply.reply_id)
        if reply.transfer is not None:
            line["handoff"] = reply.transfer.handoff
        print(json.dumps(line, ensure_ascii=False, default=str), flush=True)
    elif reply.segments:
        extra = f"  [{reply.intent} -> {reply.state}{'; ' + ', '.join(reply.actions) if reply.actions else ''}]"
        print(f"bot> {reply.text}{extra}", flush=True)


def _console(args: argparse.Namespace) -> int:
    from ivr.call.ports import CallInfo
    from ivr.config import get_settings
    from ivr.services.migrate import ensure_schema
    from ivr.services.records import RecordStore
    from ivr.services.records.capture import RecordedDialog
    from ivr.wiring import new_dialog

    settings = get_settings()
    info = CallInfo(f"chat-{uuid.uuid4().hex[:12]}", "chat", args.caller_id, language=settings.language,
                    caller_id_trusted=args.trusted)
    m = new_dialog(_shop(), info, asr_available=not args.no_asr)
    store = None
    if not args.no_record:
        ensure_schema(settings.database_url)
        store = RecordStore(settings.database_url)
    call = RecordedDialog(m, store, channel="chat", caller_id=args.caller_id, secret=settings.secret_key,
                          language=settings.language)
    try:
        return _converse(args, m, call)
    finally:
        call.finish()


def _converse(args: argparse.Namespace, m, call) -> int:
    reply = call.start()
    _emit(reply, args.json, m)
    for raw in sys.stdin:
        line = raw.rstrip("\r\n")
        cmd = line.strip()
        if cmd.startswith("#dtmf"):
            reply = call.dtmf(cmd[len("#dtmf"):].strip())
        elif cmd.startswith("#played"):
            parts = cmd.split()
            try:
                m.played(m.ctx.last_reply.reply_id if m.ctx.last_reply else 0, int(parts[1]), float(parts[2]))
            except (IndexError, ValueError):
                raise UserError("usage: #played SEGMENTS FRACTION (e.g. #played 1 0.3)") from None
            continue
        elif cmd == "#hangup":
            break
        elif cmd.startswith("#"):
            raise UserError(f"unknown console command {cmd.split()[0]!r} (known: #dtmf, #played, #hangup)")
        elif not cmd:
            reply = call.no_input()
        else:
            reply = call.text(cmd)
        _emit(reply, args.json, m)
        if reply.end_call or reply.transfer is not None:
            call.finish("bot_hangup" if reply.end_call else "transferred", "bot")
            return 0
    return 0


def _run_scripts(args: argparse.Namespace) -> int:
    from ivr.config import get_settings
    from ivr.replay.script import ScriptError, load_script, run_script

    shop = None  # opened (a new demo shop seeded) at the first good script: a bad one fails at once
    failed = 0
    for path in args.script:
        try:
            script = load_script(path)
            if shop is None:
                shop = _shop()
            if args.caller_id:
                script["caller_id"] = args.caller_id
            if args.trusted:
                script["caller_id_trusted"] = True

            def show(i, label, reply, _path=path):
                if args.json:
                    print(json.dumps({"script": _path, "turn": i, "input": label, **reply.as_json()},
                                     ensure_ascii=False), flush=True)
                elif args.verbose:
                    print(f"  {i:>2} {label}\n     bot> {reply.text}  [{reply.intent} -> {reply.state}"
                          f"{'; ' + ', '.join(reply.actions) if reply.actions else ''}]", flush=True)

            result = run_script(script, shop, language=get_settings().language, on_reply=show)
        except ScriptError as e:
            raise UserError(str(e)) from None
        if result.ok:
            print(f"PASS {path}: {result.name}", file=sys.stderr if args.json else sys.stdout, flush=True)
        else:
            failed += 1
            print(f"FAIL {path}: {result.name}", file=sys.stderr, flush=True)
            for why in result.failures:
                print(f"  {why}", file=sys.stderr, flush=True)
    return 1 if failed else 0

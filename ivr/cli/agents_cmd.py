"""`ivr agents add | list | phone | passwd | disable | enable | role | skills`: accounts for the agent desktop
(/agent) and the dashboard (/dashboard).

Roles: ``agent`` and ``supervisor`` take calls; ``supervisor`` and ``admin`` see the dashboard (see
``ivr.services.agents.accounts``). Passwords are asked for twice on the terminal, or read from one line of
standard input when that is not a terminal (``printf '%s\\n' "$PW" | ivr agents add NAME``), never from the
command line, where they would land in shell history and the process list. A disabled account cannot log in;
disabling or a new role ends its current logins.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from ivr.cli import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agents", help="agent and supervisor accounts: add, list, passwd")
    asub = p.add_subparsers(dest="agents_command", metavar="ACTION", required=True)

    def add(name: str, help_: str, func) -> argparse.ArgumentParser:
        sp = asub.add_parser(name, help=help_)
        sp.add_argument("--db", metavar="URL", help="SQLAlchemy URL (default: settings db_url / data_dir/ivr.db)")
        sp.set_defaults(func=func)
        return sp

    sp = add("add", "create an account", _add)
    sp.add_argument("name", help="login name (letters, digits, . _ -)")
    sp.add_argument("--role", choices=["agent", "supervisor", "admin"], default="agent")
    sp.add_argument("--password", help=argparse.SUPPRESS)  # removed: a deprecation error says how instead
    sp.add_argument("--display-name", default="", help="name shown to colleagues (default: the login name)")
    sp.add_argument("--skills", default="", help="comma list: orders,returns,complaints,vip,zh-CN,en-US")
    sp.add_argument("--sip-uri", default="", help="desk phone the bot dials when this agent accepts by phone")
    sp = add("list", "list accounts", _list)
    sp.add_argument("--json", action="store_true", help="JSON Lines output")
    sp = add("phone", "set or clear (no URI) an agent's desk phone (SIP URI)", _phone)
    sp.add_argument("name")
    sp.add_argument("sip_uri", nargs="?", default="")
    sp = add("passwd", "set a new password (ends the account's current logins)", _passwd)
    sp.add_argument("name")
    sp.add_argument("--password", help=argparse.SUPPRESS)
    sp = add("disable", "stop an account from logging in (ends its current logins)", _update)
    sp.add_argument("name")
    sp = add("enable", "let a disabled account log in again", _update)
    sp.add_argument("name")
    sp = add("role", "change an account's role (ends its current logins)", _update)
    sp.add_argument("name")
    sp.add_argument("role", choices=["agent", "supervisor", "admin"])
    sp = add("skills", "set an account's skills (comma list; empty string clears)", _update)
    sp.add_argument("name")
    sp.add_argument("skills", help="comma list: orders,returns,complaints,vip,zh-CN,en-US")


def _store(args: argparse.Namespace, *, create: bool = False):
    from ivr.cli.db_cmd import _ensure, _url

    url = _url(args)
    _ensure(url, create=create)
    from ivr.services.agents import AccountStore  # (after the checks: its import hashes a dummy password)

    return AccountStore(url)


def _ask_password(args: argparse.Namespace) -> str:
    if getattr(args, "password", None) is not None:
        raise UserError("--password is no longer accepted (it lands in shell history): type the password at the "
                        "prompt, or pipe it on standard input: printf '%s\\n' \"$PW\" | ivr agents "
                        f"{args.agents_command} {args.name}")
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UserError("no password given: type it at the prompt, or give it as one line on standard input")
        return line
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise UserError("the two passwords differ")
    return first


def _add(args: argparse.Namespace) -> int:
    password = _ask_password(args)  # (refusals here come before the accounts' imports)
    from ivr.services.agents import AccountError

    skills = [s.strip() for s in args.skills.split(",") if s.strip()]
    try:
        acc = _store(args, create=True).add(args.name, role=args.role, password=password, display_name=args.display_name,
                               skills=skills, sip_uri=args.sip_uri)
    except AccountError as e:
        raise UserError(str(e)) from None
    print(f"added {acc.username} ({acc.role}){' skills ' + ','.join(acc.skills) if acc.skills else ''}")
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = _store(args).list()
    if args.json:
        for a in rows:
            print(json.dumps({"agent_id": a.agent_id, "username": a.username, "display_name": a.display_name,
                              "role": a.role, "skills": list(a.skills), "active": a.active, "sip_uri": a.sip_uri},
                             ensure_ascii=False))
        return 0
    if not rows:
        print("no accounts yet: ivr agents add NAME --role agent|supervisor|admin")
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table("name", "display name", "role", "skills", "desk phone", "active")
    for a in rows:
        t.add_row(a.username, a.display_name, a.role, ",".join(a.skills), a.sip_uri, "yes" if a.active else "no")
    Console().print(t)
    return 0


def _phone(args: argparse.Namespace) -> int:
    from ivr.services.agents import AccountError

    try:
        acc = _store(args).set_sip_uri(args.name, args.sip_uri)
    except AccountError as e:
        raise UserError(str(e)) from None
    print(f"{acc.username}: desk phone {acc.sip_uri or 'none (browser audio)'}")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    from ivr.services.agents import AccountError

    password = _ask_password(args)
    try:
        acc = _store(args).set_password(args.name, password)
    except AccountError as e:
        raise UserError(str(e)) from None
    print(f"password of {acc.username} changed; its earlier logins have ended")
    return 0


def _update(args: argparse.Namespace) -> int:
    from ivr.services.agents import AccountError

    action = args.agents_command
    change: dict = {"disable": {"active": False}, "enable": {"active": True}}.get(action, {})
    if action == "role":
        change = {"role": args.role}
    elif action == "skills":
        change = {"skills": [x.strip() for x in args.skills.split(",") if x.strip()]}
    try:
        acc = _store(args).update(args.name, **change)
    except AccountError as e:
        raise UserError(str(e)) from None
    state = "active" if acc.active else "disabled (cannot log in)"
    print(f"{acc.username}: {acc.role}, {state}, skills {','.join(acc.skills) or 'none'}")
    return 0

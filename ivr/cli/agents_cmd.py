"""`ivr agents add | list | passwd`: accounts for the agent desktop (/agent) and the dashboard (/dashboard).

Roles: ``agent`` and ``supervisor`` take calls; ``supervisor`` and ``admin`` see the dashboard (see
``ivr.services.agents.accounts``). Without ``--password`` the password is asked for twice on the terminal
(or read from one line of standard input when that is not a terminal), so it never lands in shell history.
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
    sp.add_argument("--password", help="password (default: prompt)")
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
    sp.add_argument("--password", help="new password (default: prompt)")


def _store(args: argparse.Namespace):
    from ivr.cli.db_cmd import _ensure, _url
    from ivr.services.agents import AccountStore

    url = _url(args)
    _ensure(url)
    return AccountStore(url)


def _ask_password() -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            raise UserError("no password given (use --password, or type it at the prompt)")
        return line
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise UserError("the two passwords differ")
    return first


def _add(args: argparse.Namespace) -> int:
    from ivr.services.agents import AccountError

    password = args.password if args.password is not None else _ask_password()
    skills = [s.strip() for s in args.skills.split(",") if s.strip()]
    try:
        acc = _store(args).add(args.name, role=args.role, password=password, display_name=args.display_name,
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

    password = args.password if args.password is not None else _ask_password()
    try:
        acc = _store(args).set_password(args.name, password)
    except AccountError as e:
        raise UserError(str(e)) from None
    print(f"password of {acc.username} changed; its earlier logins have ended")
    return 0

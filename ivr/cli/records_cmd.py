"""`ivr records purge | export | stats`: retention, CSV export and a quick KPI summary of stored call records.

* ``purge [--older-than-days N] [--dry-run] [--json]``: delete records (and their recording files) of calls that
  started more than N days ago (default: settings ``retention_days``), the shop-side rows and the webhook message
  ids of the same age.
* ``export --csv [-o FILE] [--period all] [--from D] [--to D] [--channel C]``: one CSV row per call (masked texts, channel group, offer made and its answer).
* ``stats [--period 7d] [--channel C] [--json]``: the dashboard's KPIs on the terminal; ``--cost``: the cost and
  value view (``ivr.services.records.value``) as CSV, or JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ivr.cli import UserError


def _window_args(sp: argparse.ArgumentParser, default: str) -> None:
    sp.add_argument("--period", default=default, help=f"today, yesterday, 24h, 7d, 30d, all (default {default})")
    sp.add_argument("--from", dest="start", metavar="DATE", help="ISO date/datetime (shop time); overrides --period")
    sp.add_argument("--to", dest="end", metavar="DATE", help="ISO date (inclusive) or datetime")
    sp.add_argument("--channel", default="",
                    help="only this channel: voice-sip, voice-webrtc, chat, webhook, other, or a raw name (sip, webchat...)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("records", help="call records: purge old ones, export CSV, KPI summary")
    rsub = p.add_subparsers(dest="records_command", metavar="ACTION", required=True)

    def add(name: str, help_: str, func) -> argparse.ArgumentParser:
        sp = rsub.add_parser(name, help=help_)
        sp.add_argument("--db", metavar="URL", help="SQLAlchemy URL (default: settings db_url / data_dir/ivr.db)")
        sp.set_defaults(func=func)
        return sp

    sp = add("purge", "delete records and recordings older than the retention", _purge)
    sp.add_argument("--older-than-days", type=int, metavar="N", help="default: settings retention_days")
    sp.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
    sp = add("export", "export call records", _export)
    sp.add_argument("--csv", action="store_true", required=True, help="CSV (the only format)")
    sp.add_argument("-o", "--output", metavar="FILE", help="write here (default: standard output)")
    _window_args(sp, "all")
    sp = add("stats", "KPIs of a period", _stats)
    sp.add_argument("--json", action="store_true", help="the whole /api/stats report as JSON")
    sp.add_argument("--cost", action="store_true",
                    help="the cost and value view instead (CSV, or JSON with --json; rates from the settings)")
    _window_args(sp, "7d")


def _url(args: argparse.Namespace) -> str:
    from ivr.cli.db_cmd import _ensure, _url

    url = _url(args)
    _ensure(url)
    return url


def _filters(args: argparse.Namespace):
    from ivr.services.records.period import PeriodError, parse_window
    from ivr.services.records.stats import Filters

    try:
        return Filters(parse_window(args.period, start=args.start, end=args.end), args.channel)
    except PeriodError as e:
        raise UserError(str(e)) from None


def _purge(args: argparse.Namespace) -> int:
    from ivr.config import get_settings
    from ivr.services.records import RecordStore
    from ivr.services.records.retention import cutoff_for, purge

    days = args.older_than_days if args.older_than_days is not None else get_settings().retention_days
    if days < 1:
        raise UserError("--older-than-days must be at least 1")
    res = purge(RecordStore(_url(args)), cutoff_for(days), dry_run=args.dry_run)
    if args.json:
        print(json.dumps({**res.as_dict(), "call_ids": res.call_ids, "recordings": res.files}, ensure_ascii=False))
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {len(res.call_ids)} call records and {len(res.files)} recordings started before "
          f"{res.cutoff:%Y-%m-%d %H:%M} UTC ({days} days)" + (f"; {len(res.missing)} recordings already gone"
                                                            if res.missing else ""))
    rows = {**res.shop_rows, "webhook_messages": res.webhook_messages,
            "restock_subscriptions": res.restock_subscriptions, "customer_contacts": res.customer_contacts}
    if any(rows.values()):
        print(f"{verb} " + ", ".join(f"{n} {name}" for name, n in rows.items()) + " rows of the same age")
    if args.dry_run:
        for cid in res.call_ids:
            print(f"  {cid}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ivr.services.records.export import csv_rows

    url, f = _url(args), _filters(args)
    if args.output:
        path = Path(args.output)
        try:
            lines = 0
            with path.open("w", encoding="utf-8", newline="") as out:
                for chunk in csv_rows(url, f):
                    out.write(chunk)
                    lines += chunk.count("\r\n")
        except OSError as e:
            raise UserError(f"cannot write {path}: {e.strerror}") from None
        print(f"wrote {lines - 1} call records to {path}", file=sys.stderr)
    else:
        for chunk in csv_rows(url, f):
            sys.stdout.write(chunk)
    return 0


def _stats(args: argparse.Namespace) -> int:
    if args.cost:
        return _cost(args)
    url = _url(args)  # (a missing database fails before the records modules are imported)
    from ivr.services.records.stats import Stats

    report = Stats(url).report(_filters(args))
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    k = report["kpis"]

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x * 100:.1f}%"

    def num(x: float | None, fmt: str = ".1f") -> str:
        return "-" if x is None else format(x, fmt)

    print(f"calls {k['calls']} (in progress {k['in_progress']}), containment {pct(k['containment'])}, "
          f"transfer {pct(k['transfer_rate'])}, abandonment {pct(k['abandonment'])}, FCR {pct(k['fcr'])}")
    print(f"AHT {num(k['aht_s'])} s, CSAT {num(k['csat_avg'], '.2f')} ({k['csat_count']}), latency p50/p95 "
          f"{num(k['latency_p50_ms'], '.0f')}/{num(k['latency_p95_ms'], '.0f')} ms, ASR confidence "
          f"{num(k['asr_confidence_avg'], '.2f')}")
    o = report["offers"]
    print(f"offers {o['offered']}, accepted {o['accepted']} ({pct(o['acceptance_rate'])})")
    for c in report["by_channel"]:
        print(f"  {c['channel']:<13} calls {c['calls']}, containment {pct(c['containment'])}, transfer "
              f"{pct(c['transfer_rate'])}, CSAT {num(c['csat_avg'], '.2f')}, AHT {num(c['aht_s'])} s, offers "
              f"{c['offers_made']}, accepted {c['offers_accepted']}")
    return 0


def _cost(args: argparse.Namespace) -> int:
    from ivr.config import get_settings
    from ivr.services.records.value import CostRates, ValueView, csv_lines

    report = ValueView(_url(args)).report(_filters(args), CostRates.from_settings(get_settings()))
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        sys.stdout.writelines(csv_lines(report))
    return 0

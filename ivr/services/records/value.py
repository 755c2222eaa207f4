"""Cost and value of the hotline over stored call records (the dashboard's cost section, ``/api/stats/cost.csv``).

Money is in CNY. Rates come from the settings (``agent_cost_per_hour``, ``bot_cost_per_call``,
``agent_handle_time_s``). Over the *finished* calls that started in the window (same filters as
:mod:`ivr.services.records.stats`):

* ``contained``: calls the bot served alone (outcome ``self_served``).
* ``resolved``: contained calls plus calls an agent wrapped up with the disposition ``resolved``.
* ``agent_calls`` / ``agent_minutes``: calls an agent took (``agent_id`` set) and their handle time (answer to
  hang-up: the records keep no separate bridge time, so the bot's part of such a call counts too, an upper bound).
* ``avg_agent_handle_s``: ``agent_handle_time_s`` when it is set (> 0); else the mean handle time of the
  window's agent-handled calls (``source`` = ``measured``); with none of those, ``FALLBACK_HANDLE_S`` (300 s,
  ``source`` = ``default``).
* ``agent_minutes_saved`` = contained x ``avg_agent_handle_s`` / 60: what agents would have spent on those calls.
* ``money_saved`` = contained x (``avg_agent_handle_s`` / 3600 x ``agent_cost_per_hour`` - ``bot_cost_per_call``).
* ``bot_cost`` = calls x ``bot_cost_per_call`` (every call meets the bot first); ``agent_cost`` = agent_minutes /
  60 x ``agent_cost_per_hour``; ``total_cost`` = both; ``cost_per_resolved`` = total_cost / resolved (None when
  nothing was resolved).

Rows by channel are grouped in SQL. Rows by intent take each call's *request*: the intent of its first caller turn
that asks for something (not a greeting, thanks, goodbye, yes/no or unrecognised); calls without one are ``other``.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select

from ivr.services.db import transaction
from ivr.services.records.stats import CALLER_KINDS, Filters
from ivr.services.records.tables import CallRow, TurnRow

CURRENCY = "CNY"
FALLBACK_HANDLE_S = 300.0
NOT_REQUESTS = frozenset({"", "other", "greeting", "thanks", "goodbye", "affirm", "deny", "dtmf"})
CSV_COLUMNS = ("group", "key", "calls", "contained", "resolved", "agent_calls", "agent_minutes",
               "agent_minutes_saved", "money_saved", "bot_cost", "agent_cost", "total_cost", "cost_per_resolved")


@dataclass(frozen=True, slots=True)
class CostRates:
    """What an agent hour and a bot call cost (CNY), and the handle time a contained call saves (0 = measured)."""

    agent_cost_per_hour: float = 60.0
    bot_cost_per_call: float = 0.5
    agent_handle_time_s: float = 0.0

    @classmethod
    def from_settings(cls, settings: Any) -> CostRates:
        return cls(float(settings.agent_cost_per_hour), float(settings.bot_cost_per_call),
                   float(settings.agent_handle_time_s))


@dataclass(slots=True)
class _Acc:
    calls: int = 0
    contained: int = 0
    resolved: int = 0
    agent_calls: int = 0
    agent_s: float = 0.0


def _resolved_expr() -> Any:
    return case(((CallRow.outcome == "self_served") | (CallRow.disposition == "resolved"), 1), else_=0)


def _agent_expr() -> Any:
    return CallRow.agent_id != ""


class ValueView:
    """Cost per resolved contact and what the bot saves. Blocking: call off the event loop."""

    def __init__(self, url: str) -> None:
        self.url = url

    def report(self, f: Filters, rates: CostRates) -> dict[str, Any]:
        """``{"currency", "rates", "totals", "by_channel", "by_intent"}`` (see the module docstring)."""
        cols = (func.count(), func.coalesce(func.sum(case((CallRow.outcome == "self_served", 1), else_=0)), 0),
                func.coalesce(func.sum(_resolved_expr()), 0),
                func.coalesce(func.sum(case((_agent_expr(), 1), else_=0)), 0),
                func.coalesce(func.sum(case((_agent_expr(), func.coalesce(CallRow.handle_time_s, 0.0)), else_=0.0)),
                              0.0))
        with transaction(self.url) as s:
            total = _acc(s.execute(select(*cols).where(*f.calls())).one())
            channels = {str(r[0]): _acc(r[1:]) for r in s.execute(
                select(CallRow.channel, *cols).where(*f.calls()).group_by(CallRow.channel).order_by(CallRow.channel))}
            per_call = s.execute(select(CallRow.call_id, CallRow.outcome, CallRow.disposition, CallRow.agent_id,
                                        CallRow.handle_time_s).where(*f.calls())).all()
            turns = s.execute(select(TurnRow.call_id, TurnRow.idx, TurnRow.intent).join(CallRow).where(
                *f.calls(), TurnRow.kind.in_(CALLER_KINDS), TurnRow.intent.not_in(NOT_REQUESTS))
                .order_by(TurnRow.call_id, TurnRow.idx)).all()
        request: dict[str, str] = {}
        for call_id, _idx, intent in turns:
            request.setdefault(call_id, intent)
        intents: dict[str, _Acc] = defaultdict(_Acc)
        for call_id, outcome, disposition, agent_id, handle_s in per_call:
            a = intents[request.get(call_id, "other")]
            a.calls += 1
            a.contained += outcome == "self_served"
            a.resolved += outcome == "self_served" or disposition == "resolved"
            if agent_id:
                a.agent_calls += 1
                a.agent_s += float(handle_s or 0.0)
        if rates.agent_handle_time_s > 0:
            avg, source = rates.agent_handle_time_s, "configured"
        elif total.agent_calls:
            avg, source = total.agent_s / total.agent_calls, "measured"
        else:
            avg, source = FALLBACK_HANDLE_S, "default"
        by_intent = sorted(intents.items(), key=lambda kv: (-kv[1].calls, kv[0]))
        return {
            "currency": CURRENCY,
            "rates": {"agent_cost_per_hour": rates.agent_cost_per_hour, "bot_cost_per_call": rates.bot_cost_per_call,
                      "agent_handle_time_s": rates.agent_handle_time_s, "avg_agent_handle_s": avg,
                      "avg_agent_handle_source": source},
            "totals": _row("total", total, rates, avg),
            "by_channel": [_row(k, a, rates, avg) for k, a in channels.items()],
            "by_intent": [_row(k, a, rates, avg) for k, a in by_intent],
        }


def _acc(r: Any) -> _Acc:
    return _Acc(int(r[0]), int(r[1]), int(r[2]), int(r[3]), float(r[4] or 0.0))


def _row(key: str, a: _Acc, rates: CostRates, avg_s: float) -> dict[str, Any]:
    bot = a.calls * rates.bot_cost_per_call
    agent = a.agent_s / 3600.0 * rates.agent_cost_per_hour
    return {"key": key, "calls": a.calls, "contained": a.contained, "resolved": a.resolved,
            "agent_calls": a.agent_calls, "agent_minutes": a.agent_s / 60.0,
            "agent_minutes_saved": a.contained * avg_s / 60.0,
            "money_saved": a.contained * (avg_s / 3600.0 * rates.agent_cost_per_hour - rates.bot_cost_per_call),
            "bot_cost": bot, "agent_cost": agent, "total_cost": bot + agent,
            "cost_per_resolved": (bot + agent) / a.resolved if a.resolved else None}


def csv_lines(report: dict[str, Any]) -> Iterator[str]:
    """The report as CSV lines: the total, then one row per channel and per intent (money rounded to fen)."""
    def line(values: list[Any]) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        return buf.getvalue()

    yield line(list(CSV_COLUMNS))
    groups = [("total", [report["totals"]]), ("channel", report["by_channel"]), ("intent", report["by_intent"])]
    for group, rows in groups:
        for r in rows:
            yield line([group, *(_fmt(c, r[c]) for c in CSV_COLUMNS[1:])])


def _fmt(col: str, v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.2f}" if col not in ("agent_minutes", "agent_minutes_saved") else f"{v:.1f}"
    return v

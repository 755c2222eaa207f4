"""Service-health numbers over stored call records (the dashboard's ``/api/stats``); SQLite and PostgreSQL.

KPIs count *finished* calls (outcome other than ``in_progress``) that started inside the window, on one channel or
all of them:

* ``containment`` = self_served / calls; ``transfer_rate``, ``callback_rate``, ``abandonment``, ``failure_rate``
  likewise; ``aht_s`` = mean handle time (answer to hang-up).
* ``fcr`` (first-contact resolution) = of the calls with a known caller (``caller_key``), the share that were
  self-served *and* whose caller did not call again (any channel) within 7 days after that call started. Calls of
  the last 7 days can still lose their FCR when the caller rings again.
* ``csat_avg`` over calls that gave a rating (1..5), ``csat_distribution``, ``csat_response_rate``.
* ``latency_p50_ms`` / ``latency_p95_ms``: bot turn latency (caller speech end or key press -> first bot audio),
  linear-interpolated percentiles over every turn that has one (voice calls; text chats have none).
* ``asr_confidence_avg``: mean recogniser confidence of recognised caller utterances.

Per channel (``by_channel``: voice-sip, voice-webrtc, chat, webhook) and the personal offers (``offers``: offered,
accepted, acceptance rate) are defined in :mod:`ivr.services.records.channels`; a ``channel`` filter is a group
name or a raw channel name.

Besides the KPIs, ``self_service_locks`` lists the orders locked for self-service *right now* (too many wrong
verification answers across calls, ``ivr.services.shop.lockout``), whatever the period: count and, per order, the
failures in the window and when the lock lifts.

Counts and averages run in SQL; percentiles, FCR's 7-day look-ahead and the time buckets (cut in shop time) run in
Python over single-column selects, which keeps the SQL portable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.orm import selectinload

from ivr.services.db import transaction
from ivr.services.records import channels as channels_mod
from ivr.services.records.model import CallRecord
from ivr.services.records.period import Window, bucket_range, bucket_start
from ivr.services.records.store import _aware, _to_record
from ivr.services.records.tables import CallRow, TurnRow

FINISHED = ("self_served", "transferred", "callback", "abandoned", "failed")
FCR_WINDOW = timedelta(days=7)
CALLER_KINDS = ("speech", "dtmf")
NEGATIVE_SENTIMENT = -0.3  # a caller turn at or below this counts as negative


def percentile(values: Iterable[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..100) of ``values``; None when empty."""
    xs = sorted(values)
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _ratio(n: int, d: int) -> float | None:
    return n / d if d else None


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


@dataclass(frozen=True, slots=True)
class Filters:
    """Which calls: a window, a channel ("" = all; a group such as ``voice-sip`` or a raw channel name)."""

    window: Window
    channel: str = ""

    def base(self) -> list[Any]:
        """SQL conditions on ``call_records``: started in the window, on the channel."""
        conds: list[Any] = [CallRow.started_at < self.window.end]
        if self.window.start is not None:
            conds.append(CallRow.started_at >= self.window.start)
        if self.channel:
            conds.append(channels_mod.condition(self.channel))
        return conds

    def calls(self) -> list[Any]:
        """:meth:`base` and finished."""
        return [*self.base(), CallRow.outcome.in_(FINISHED)]


class Stats:
    """Read-only analytics over a records database. Blocking: call off the event loop."""

    def __init__(self, url: str) -> None:
        self.url = url

    # --- the whole report ---------------------------------------------------------------------------------
    def report(self, f: Filters, *, top_unrecognised: int = 10) -> dict[str, Any]:
        """Everything ``/api/stats`` answers: KPIs, series, intents, sentiment, top unrecognised utterances."""
        from ivr.services.records.feedback import collect, group

        with transaction(self.url) as s:
            kpis = self._kpis(s, f)
            series = self._series(s, f)
            intents = [{"intent": i, "count": n} for i, n in s.execute(
                select(TurnRow.intent, func.count()).join(CallRow).where(
                    *f.calls(), TurnRow.kind.in_(CALLER_KINDS), TurnRow.intent != "")
                .group_by(TurnRow.intent).order_by(func.count().desc(), TurnRow.intent))]
            channels = sorted(c for (c,) in s.execute(select(CallRow.channel).distinct()))
            events = channels_mod.offer_events(s, f.calls())
            per_channel = channels_mod.by_channel(s, f.calls(), events)
        offers = channels_mod.offer_summary(events)
        kpis.update(offers_offered=offers["offered"], offers_accepted=offers["accepted"],
                    offer_acceptance_rate=offers["acceptance_rate"])
        groups = group(collect(self.url, f))[:top_unrecognised]
        return {"period": f.window.as_dict(), "channel": f.channel, "channels": channels,
                "channel_groups": channels_mod.groups_present(channels), "by_channel": per_channel,
                "offers": offers, "kpis": kpis,
                "series": series, "intents": intents, "sentiment": self._sentiment_summary(series, kpis),
                "unrecognised": [g.as_dict(examples=5) for g in groups], "self_service_locks": self.locks()}

    def locks(self) -> dict[str, Any]:
        """Orders locked for self-service now (thresholds from the settings, else the defaults)."""
        from sqlalchemy.exc import SQLAlchemyError

        from ivr.config import ConfigError, get_settings
        from ivr.services.shop.lockout import LockoutStore

        kw: dict[str, Any] = {}
        try:
            st = get_settings()
            kw = {"max_failures": st.verify_lock_failures, "window_h": st.verify_lock_window_h}
        except ConfigError:  # settings unreadable: the documented defaults
            pass
        try:
            orders = LockoutStore(self.url, **kw).locked_orders()
        except SQLAlchemyError:  # a records database below migration 0005: nothing to show
            orders = []
        return {"count": len(orders), "orders": orders[:50]}

    def _kpis(self, s: Any, f: Filters) -> dict[str, Any]:
        def n(outcome: str) -> Any:
            return func.coalesce(func.sum(case((CallRow.outcome == outcome, 1), else_=0)), 0)

        row = s.execute(select(func.count(), *(n(o) for o in FINISHED), func.avg(CallRow.handle_time_s),
                               func.avg(CallRow.csat), func.count(CallRow.csat)).where(*f.calls())).one()
        calls, counts = int(row[0]), dict(zip(FINISHED, (int(x) for x in row[1:6]), strict=True))
        dist = {str(k): 0 for k in range(1, 6)}
        for v, c in s.execute(select(CallRow.csat, func.count()).where(*f.calls(), CallRow.csat.is_not(None))
                              .group_by(CallRow.csat)):
            dist[str(v)] = int(c)
        lat = [x for (x,) in s.execute(select(TurnRow.latency_ms).join(CallRow).where(
            *f.calls(), TurnRow.latency_ms.is_not(None)))]
        asr_avg, asr_n = s.execute(select(func.avg(TurnRow.asr_confidence), func.count(TurnRow.asr_confidence))
                                   .join(CallRow).where(*f.calls(), TurnRow.asr_confidence.is_not(None))).one()
        in_progress = s.execute(select(func.count()).where(*f.base(), CallRow.outcome == "in_progress")).scalar_one()
        fcr_ok, fcr_n = self._fcr(s, f)
        sent_avg, sent_n, sent_neg = s.execute(select(
            func.avg(TurnRow.sentiment), func.count(TurnRow.sentiment),
            func.coalesce(func.sum(case((TurnRow.sentiment <= NEGATIVE_SENTIMENT, 1), else_=0)), 0))
            .join(CallRow).where(*f.calls(), TurnRow.kind.in_(CALLER_KINDS), TurnRow.sentiment.is_not(None))).one()
        csat_n = int(row[8])
        return {
            "calls": calls, "in_progress": int(in_progress), **counts,
            "containment": _ratio(counts["self_served"], calls), "transfer_rate": _ratio(counts["transferred"], calls),
            "callback_rate": _ratio(counts["callback"], calls), "abandonment": _ratio(counts["abandoned"], calls),
            "failure_rate": _ratio(counts["failed"], calls),
            "aht_s": None if row[6] is None else float(row[6]),
            "fcr": _ratio(fcr_ok, fcr_n), "fcr_resolved": fcr_ok, "fcr_eligible": fcr_n,
            "csat_avg": None if row[7] is None else float(row[7]), "csat_count": csat_n,
            "csat_response_rate": _ratio(csat_n, calls), "csat_distribution": dist,
            "latency_p50_ms": percentile(lat, 50), "latency_p95_ms": percentile(lat, 95), "latency_turns": len(lat),
            "asr_confidence_avg": None if asr_avg is None else float(asr_avg), "asr_turns": int(asr_n),
            "sentiment_avg": None if sent_avg is None else float(sent_avg), "sentiment_turns": int(sent_n),
            "negative_share": _ratio(int(sent_neg), int(sent_n)),
        }

    def fcr_calls(self, f: Filters) -> set[str]:
        """Ids of the calls that count as resolved at first contact."""
        with transaction(self.url) as s:
            return self._fcr_ids(s, f)[0]

    def _fcr(self, s: Any, f: Filters) -> tuple[int, int]:
        ok, n = self._fcr_ids(s, f)
        return len(ok), n

    def _fcr_ids(self, s: Any, f: Filters) -> tuple[set[str], int]:
        rows = s.execute(select(CallRow.call_id, CallRow.caller_key, CallRow.started_at, CallRow.outcome)
                         .where(*f.calls(), CallRow.caller_key != "")).all()
        if not rows:
            return set(), 0
        keys = sorted({r[1] for r in rows})
        later: dict[str, list[datetime]] = defaultdict(list)
        first = min(_aware(r[2]) for r in rows)
        last = max(_aware(r[2]) for r in rows) + FCR_WINDOW
        for i in range(0, len(keys), 500):
            for k, t in s.execute(select(CallRow.caller_key, CallRow.started_at).where(
                    CallRow.caller_key.in_(keys[i:i + 500]), CallRow.started_at > first, CallRow.started_at <= last)):
                later[k].append(_aware(t))
        ok = set()
        for call_id, key, started, outcome in rows:
            t0 = _aware(started)
            if outcome == "self_served" and not any(t0 < t <= t0 + FCR_WINDOW for t in later[key]):
                ok.add(call_id)
        return ok, len(rows)

    # --- over time ----------------------------------------------------------------------------------------
    def _series(self, s: Any, f: Filters) -> list[dict[str, Any]]:
        w = f.window
        calls = s.execute(select(CallRow.started_at, CallRow.outcome, CallRow.csat).where(*f.calls())).all()
        turns = s.execute(select(TurnRow.at, TurnRow.kind, TurnRow.latency_ms, TurnRow.sentiment).join(CallRow)
                          .where(*f.calls(), (TurnRow.latency_ms.is_not(None)) | (TurnRow.sentiment.is_not(None)))
                          ).all()
        first = w.start or min((_aware(c[0]) for c in calls), default=None)
        if first is None:
            return []
        keys = bucket_range(first, w.end - timedelta(microseconds=1), w.bucket, w.tz)
        acc: dict[datetime, dict[str, list]] = {}

        def slot(t: datetime) -> dict[str, list]:
            return acc.setdefault(bucket_start(_aware(t), w.bucket, w.tz),
                                  {"outcomes": [], "csat": [], "lat": [], "sent": []})

        for started, outcome, csat in calls:
            b = slot(started)
            b["outcomes"].append(outcome)
            if csat is not None:
                b["csat"].append(csat)
        for at, kind, lat, sent in turns:
            b = slot(at)
            if lat is not None:
                b["lat"].append(lat)
            if sent is not None and kind in CALLER_KINDS:
                b["sent"].append(sent)
        out = []
        for k in keys if keys is not None else sorted(acc):
            b = acc.get(k, {"outcomes": [], "csat": [], "lat": [], "sent": []})
            n = len(b["outcomes"])
            served = sum(o == "self_served" for o in b["outcomes"])
            out.append({
                "t": k.isoformat(), "calls": n, "self_served": served,
                "transferred": sum(o == "transferred" for o in b["outcomes"]),
                "abandoned": sum(o == "abandoned" for o in b["outcomes"]), "containment": _ratio(served, n),
                "csat_avg": _mean(b["csat"]), "csat_count": len(b["csat"]),
                "latency_p50_ms": percentile(b["lat"], 50), "latency_p95_ms": percentile(b["lat"], 95),
                "sentiment_avg": _mean(b["sent"]),
                "negative_share": _ratio(sum(x <= NEGATIVE_SENTIMENT for x in b["sent"]), len(b["sent"])),
            })
        return out

    @staticmethod
    def _sentiment_summary(series: list[dict[str, Any]], kpis: dict[str, Any]) -> dict[str, Any]:
        return {"avg": kpis["sentiment_avg"], "turns": kpis["sentiment_turns"],
                "negative_share": kpis["negative_share"], "threshold": NEGATIVE_SENTIMENT,
                "series": [{"t": p["t"], "avg": p["sentiment_avg"], "negative_share": p["negative_share"]}
                           for p in series]}

    # --- drill-down ---------------------------------------------------------------------------------------
    def calls(self, f: Filters, *, outcome: str = "", csat: int | None = None, has_csat: bool = False,
              intent: str = "", kpi: str = "", call_ids: Iterable[str] | None = None, limit: int = 50,
              offset: int = 0) -> dict[str, Any]:
        """The calls behind a KPI, newest first: ``{"total", "calls": [summary...]}``.

        ``kpi``: ``calls`` (all), ``containment``, ``transfer_rate``, ``callback_rate``, ``abandonment``,
        ``failure_rate``, ``fcr`` (resolved at first contact), ``csat`` (rated calls), ``latency`` (calls with a
        latency above the window's p95), ``offers`` (an offer was made), ``offers_accepted`` (and taken)."""
        q_conds = list(f.calls())
        kpi_outcome = {"containment": "self_served", "transfer_rate": "transferred", "callback_rate": "callback",
                       "abandonment": "abandoned", "failure_rate": "failed"}
        with transaction(self.url) as s:
            if kpi in kpi_outcome:
                outcome = kpi_outcome[kpi]
            elif kpi == "csat":
                has_csat = True
            elif kpi == "fcr":
                call_ids = self._fcr_ids(s, f)[0]
            elif kpi in ("offers", "offers_accepted"):
                call_ids = {c for c, ev in channels_mod.offer_events(s, f.calls()).items()
                            if "made" in ev and (kpi == "offers" or "accepted" in ev)}
            elif kpi == "latency":
                lat = [x for (x,) in s.execute(select(TurnRow.latency_ms).join(CallRow).where(
                    *f.calls(), TurnRow.latency_ms.is_not(None)))]
                p95 = percentile(lat, 95)
                q_conds.append(CallRow.call_id.in_(select(TurnRow.call_id).where(
                    TurnRow.latency_ms >= (p95 if p95 is not None else 0.0))))
            elif kpi not in ("", "calls"):
                raise ValueError(f"unknown kpi {kpi!r}")
            if outcome:
                q_conds.append(CallRow.outcome == outcome)
            if csat is not None:
                q_conds.append(CallRow.csat == csat)
            if has_csat:
                q_conds.append(CallRow.csat.is_not(None))
            if intent:
                q_conds.append(CallRow.call_id.in_(select(TurnRow.call_id).where(
                    and_(TurnRow.intent == intent, TurnRow.kind.in_(CALLER_KINDS)))))
            if call_ids is not None:
                ids = sorted(set(call_ids))
                if not ids:
                    return {"total": 0, "calls": []}
                q_conds.append(CallRow.call_id.in_(ids))
            total = s.execute(select(func.count()).select_from(CallRow).where(*q_conds)).scalar_one()
            q: Select = select(CallRow).where(*q_conds).order_by(CallRow.started_at.desc(), CallRow.call_id)
            rows = s.execute(q.limit(max(1, min(limit, 500))).offset(max(0, offset))).scalars().all()
            return {"total": int(total), "calls": [call_summary(r) for r in rows]}

    def transcript(self, call_id: str) -> CallRecord | None:
        with transaction(self.url) as s:
            row = s.execute(select(CallRow).options(selectinload(CallRow.turns))
                            .where(CallRow.call_id == call_id)).scalar_one_or_none()
            return None if row is None else _to_record(row)


def call_summary(r: CallRow) -> dict[str, Any]:
    """One call in a drill-down list (caller already masked at write time)."""
    started = _aware(r.started_at)
    ended = _aware(r.ended_at)
    return {"call_id": r.call_id, "started_at": started.isoformat() if started else None,
            "ended_at": ended.isoformat() if ended else None, "channel": r.channel,
            "channel_group": channels_mod.group_of(r.channel), "caller": r.caller,
            "outcome": r.outcome, "end_reason": r.end_reason, "transfer_reason": r.transfer_reason,
            "handle_time_s": r.handle_time_s, "csat": r.csat, "turns": r.turn_count,
            "p50_latency_ms": r.p50_latency_ms}


"""CSV export of call records (one row per call; texts were masked at write time).

``channel_group`` is the report channel (voice-sip, voice-webrtc, chat, webhook, other:
:mod:`ivr.services.records.channels`); ``offer`` is the kind of personal offer made on the contact (empty: none) and
``offer_result`` whether it was ``accepted`` or ``declined`` (empty: no answer, e.g. the caller hung up).

Cells that a spreadsheet would run as a formula (starting with ``= + - @``) get a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from ivr.services.db import transaction
from ivr.services.records.channels import group_of, offer_events
from ivr.services.records.store import _aware
from ivr.services.records.tables import CallRow

COLUMNS = ("call_id", "started_at", "ended_at", "channel", "caller", "language", "outcome", "end_reason", "ended_by",
           "transfer_reason", "handle_time_s", "turn_count", "p50_latency_ms", "csat", "feedback",
           "feedback_keywords", "asr_mode", "agent_id", "disposition", "channel_group", "offer", "offer_result")
_STORED = COLUMNS[:COLUMNS.index("channel_group")]


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        v = "|".join(str(x) for x in v)
    elif hasattr(v, "isoformat"):
        v = _aware(v).isoformat()
    s = str(v)
    return "'" + s if s[:1] in ("=", "+", "-", "@") else s


def csv_rows(url: str, filters: Any) -> Iterator[str]:
    """The CSV text in chunks: a header line, then one line per call of ``filters.base()``, oldest first."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(COLUMNS)

    def take() -> str:
        out = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return out

    yield take()
    with transaction(url) as s:
        q = select(CallRow).where(*filters.base()).order_by(CallRow.started_at, CallRow.call_id)
        events = offer_events(s, filters.base())
        for i, row in enumerate(s.execute(q.execution_options(yield_per=500)).scalars(), start=1):
            ev = events.get(row.call_id, {})
            result = "accepted" if "accepted" in ev else "declined" if "declined" in ev else ""
            w.writerow([*(_cell(getattr(row, c)) for c in _STORED), group_of(row.channel), ev.get("made", ""),
                        result if "made" in ev else ""])
            if i % 500 == 0:
                yield take()
    rest = take()
    if rest:
        yield rest

"""Reporting periods: ``period`` = ``today`` | ``yesterday`` | ``<N>h`` | ``<N>d`` | ``all``, or ``from``/``to``.

* ``today`` / ``yesterday``: calendar days in shop time (Asia/Shanghai); ``24h``, ``7d``, ``30d`` (any N from 1 to
  3660): the last N hours/days up to now; ``all``: everything (from the first record).
* ``from`` / ``to`` (ISO date ``2024-05-01`` or datetime ``2024-05-01T08:00``, shop time unless an offset is given)
  override ``period``; a ``to`` date is inclusive (its whole day).
* Windows are half-open ``[start, end)`` in UTC. Series buckets are hours when the window spans at most 48 hours,
  days otherwise (or as asked: ``bucket=hour|day``), cut in shop time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHOP_TZ = ZoneInfo("Asia/Shanghai")
_REL = re.compile(r"^(\d{1,4})([hd])$")
BUCKETS = ("hour", "day")


class PeriodError(ValueError):
    """An unreadable period, date or bucket."""


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open UTC interval ``[start, end)`` with the series bucket to cut it into."""

    name: str
    start: datetime | None  # None: from the first record (``all``)
    end: datetime
    bucket: str
    tz: ZoneInfo = SHOP_TZ

    def as_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "from": self.start.isoformat() if self.start else None,
                "to": self.end.isoformat(), "bucket": self.bucket, "timezone": str(self.tz)}


def _parse_point(value: str, tz: ZoneInfo, *, end: bool) -> datetime:
    v = value.strip()
    try:
        if len(v) == 10:
            d = date.fromisoformat(v)
            return datetime.combine(d + timedelta(days=1) if end else d, time(), tz).astimezone(UTC)
        dt = datetime.fromisoformat(v)
    except ValueError:
        raise PeriodError(f"not an ISO date or datetime: {value!r} (e.g. 2024-05-01 or 2024-05-01T08:00)") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=tz)).astimezone(UTC)


def parse_window(period: str = "7d", *, start: str | None = None, end: str | None = None, bucket: str | None = None,
                 now: datetime | None = None, tz: ZoneInfo = SHOP_TZ) -> Window:
    """The window a request asks for (see the module docstring); raises PeriodError."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    name = (period or "7d").strip().lower()
    if start or end:
        s = _parse_point(start, tz, end=False) if start else None
        e = _parse_point(end, tz, end=True) if end else now
        name = "custom"
    elif name in ("today", "yesterday"):
        midnight = datetime.combine(now.astimezone(tz).date(), time(), tz).astimezone(UTC)
        s, e = (midnight, now) if name == "today" else (midnight - timedelta(days=1), midnight)
    elif name == "all":
        s, e = None, now
    elif m := _REL.match(name):
        n, unit = int(m.group(1)), m.group(2)
        if not 1 <= n <= (3660 if unit == "d" else 87840):
            raise PeriodError(f"period {period!r} is out of range")
        s, e = now - (timedelta(hours=n) if unit == "h" else timedelta(days=n)), now
    else:
        raise PeriodError(f"unknown period {period!r}; use today, yesterday, 24h, 7d, 30d, all (or from/to)")
    if s is not None and s >= e:
        raise PeriodError("the period's start must be before its end")
    if bucket is not None and bucket not in BUCKETS:
        raise PeriodError(f"unknown bucket {bucket!r}; use hour or day")
    if bucket is None:
        bucket = "hour" if s is not None and e - s <= timedelta(hours=48) else "day"
    return Window(name, s, e, bucket, tz)


def bucket_start(t: datetime, bucket: str, tz: ZoneInfo = SHOP_TZ) -> datetime:
    """The local start of the hour or day ``t`` falls in."""
    local = t.astimezone(tz)
    if bucket == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    return datetime.combine(local.date(), time(), tz)


def bucket_range(first: datetime, last: datetime, bucket: str, tz: ZoneInfo = SHOP_TZ,
                 limit: int = 800) -> list[datetime] | None:
    """Every bucket start from ``first`` to ``last`` (local), or None when there would be more than ``limit``."""
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    cur, stop = bucket_start(first, bucket, tz), bucket_start(last, bucket, tz)
    out: list[datetime] = []
    while cur <= stop:
        out.append(cur)
        if len(out) > limit:
            return None
        # step in UTC for hours; for days re-anchor at local midnight (no DST in shop time, but stay correct)
        cur = (cur.astimezone(UTC) + step).astimezone(tz) if bucket == "hour" else \
            datetime.combine(cur.date() + timedelta(days=1), time(), tz)
    return out

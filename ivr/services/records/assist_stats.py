"""Agent-assist counts over stored call records (``/api/stats`` ``assist``): how the desktop's suggestions fared.

Over the *finished* calls that started in the window (filters of :mod:`ivr.services.records.stats`), from each
record's ``extra.assist`` (``shown``, ``used``, ``dismissed`` suggestion ids) and ``extra.agent_actions``:

* ``calls``: calls that showed the agent at least one suggestion; ``shown``, ``used``: suggestions (per call, each
  id once); ``ignored`` = shown - used (dismissed ones and those left alone); ``dismissed``: explicitly dismissed;
  ``use_rate`` = used / shown (None without any shown);
* ``by_kind``: the same per kind (``kb``, ``order``, ``flow``: the id's prefix);
* ``actions``: one-click shop actions run by agents, per action.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import select

from ivr.services.db import transaction
from ivr.services.records.stats import FINISHED, Filters
from ivr.services.records.tables import CallRow


def _kind(suggestion_id: str) -> str:
    return suggestion_id.split(":", 1)[0]


def summarize(extras: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``assist`` section from the records' ``extra`` dicts."""
    total: Counter[str] = Counter()
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    actions: Counter[str] = Counter()
    for extra in extras:
        a = (extra or {}).get("assist") or {}
        shown = set(a.get("shown") or [])
        used = set(a.get("used") or []) & shown
        dismissed = set(a.get("dismissed") or []) & shown - used
        if shown:
            total["calls"] += 1
        for ids, name in ((shown, "shown"), (used, "used"), (dismissed, "dismissed"), (shown - used, "ignored")):
            total[name] += len(ids)
            for i in ids:
                kinds[_kind(i)][name] += 1
        for act in (extra or {}).get("agent_actions") or []:
            actions[str(act.get("action", ""))] += 1

    def block(c: Counter[str]) -> dict[str, Any]:
        return {k: c[k] for k in ("shown", "used", "ignored", "dismissed")} | {
            "use_rate": c["used"] / c["shown"] if c["shown"] else None}

    return {"calls": total["calls"], **block(total), "by_kind": {k: block(c) for k, c in sorted(kinds.items())},
            "actions": dict(sorted(actions.items()))}


def assist_report(url: str, f: Filters) -> dict[str, Any]:
    """The ``assist`` section for a filter (reads only the ``extra`` column)."""
    with transaction(url) as s:
        extras = list(s.scalars(select(CallRow.extra).where(*f.base(), CallRow.outcome.in_(FINISHED))))
    return summarize([e for e in extras if isinstance(e, dict)])

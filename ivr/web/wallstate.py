"""What the supervisor wall shows, built from live state: the call manager's live calls (``sessions``), the agent
desk (queue and presence) and the warm-transfer bridges; service level also from today's stored records.

* A live call is ``queue`` while it waits in the desk's queue (ringing an agent included), ``agent`` while bridged
  to an agent, else ``bot``.
* Mood of a call: ``angry`` once any caller turn was angry (the dialogue's sentiment score reaches -1, i.e. the
  lexicon's strong-anger threshold; the hand-off card says angry; or a caller line heard during the agent part is
  angry by the same analyser); else ``frustrated`` when the last scored turn is at or below -0.4; else ``calm``.
* Service level (``service_level_s`` = T): over callers who queued today (shop time): answered by an agent within
  T seconds / (answered + not answered after waiting more than T). Callers who left within T do not count; callers
  still waiting longer than T count as missed. ``value`` is None when nobody counts yet.
* Alerts: the queue at or over ``wall_queue_alert`` callers; speech recognition overloaded (the engine's overload
  guard: new calls are answered in keypad mode meanwhile); each live call whose mood is angry.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from ivr.lang import get_pack
from ivr.privacy import mask_phone
from ivr.services.agents.desk import PRESENCE
from ivr.services.db import transaction
from ivr.services.records.period import parse_window
from ivr.services.records.tables import CallRow

ANGRY_SCORE = -0.999  # the dialogue's score is -1.0 exactly when the caller is angry (ivr.dialog.sentiment)
FRUSTRATED_SCORE = -0.4
DB_CACHE_S = 5.0
STATES = ("bot", "queue", "agent")


class WallState:
    """Builds wall snapshots for one app (``app.state``); call :meth:`snapshot` on the event loop."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self._db: dict[str, tuple[bool, float]] = {}
        self._db_at = 0.0
        self._db_task: asyncio.Task | None = None
        self._heard: dict[tuple[str, int], bool] = {}  # (call_id, turn index) -> angry, for agent-part lines
        self._lexicon: dict[str, Any] | None = None

    # --- pieces ---------------------------------------------------------------------------------------------
    @property
    def settings(self) -> Any:
        return self.state.settings

    def _parts(self) -> tuple[dict[str, Any], Any, dict[str, Any]]:
        calls = self.state.calls
        sessions = dict(getattr(calls, "sessions", {}) or {}) if calls is not None else {}
        desk = getattr(calls, "desk", None) if calls is not None else None
        bridges = dict(getattr(getattr(calls, "transfer_hook", None), "bridges", {}) or {})
        return sessions, desk, bridges

    def lexicon(self) -> dict[str, Any]:
        if self._lexicon is None:
            from ivr.lang import get_pack

            self._lexicon = get_pack(self.settings.language).sentiment
        return self._lexicon

    def mood(self, record: Any, handoff: dict[str, Any] | None) -> str:
        """angry | frustrated | calm (see the module docstring)."""
        from ivr.dialog.sentiment import analyse

        if ((handoff or {}).get("sentiment") or {}).get("level") == "angry":
            return "angry"
        last: float | None = None
        for t in getattr(record, "turns", []) if record is not None else []:
            if t.sentiment is not None and t.kind in ("speech", "dtmf"):
                last = t.sentiment
                if t.sentiment <= ANGRY_SCORE:
                    return "angry"
            elif t.kind == "agent" and t.caller_text:
                key = (record.call_id, t.index)
                if key not in self._heard:
                    self._heard[key] = analyse(t.caller_text, self.lexicon()).level == "angry"
                if self._heard[key]:
                    return "angry"
        return "frustrated" if last is not None and last <= FRUSTRATED_SCORE else "calm"

    # --- today's queued callers from the records (cached, read in a thread) ---------------------------------
    def _read_db(self) -> dict[str, tuple[bool, float]]:
        start = parse_window("today").start
        out: dict[str, tuple[bool, float]] = {}
        with transaction(self.settings.database_url) as s:
            for call_id, agent_id, extra in s.execute(select(CallRow.call_id, CallRow.agent_id, CallRow.extra).where(
                    CallRow.started_at >= start, CallRow.outcome != "self_served")):
                q = (extra or {}).get("queue")
                if isinstance(q, dict):
                    out[call_id] = (bool(agent_id), float(q.get("waited_s") or 0.0))
        return out

    async def _refresh_db(self) -> None:
        try:
            self._db = await asyncio.to_thread(self._read_db)
        except Exception:  # the wall keeps its live part when the database is unreadable
            pass
        self._db_at = time.monotonic()

    async def _ensure_db(self) -> None:
        if not self._db_at:  # the first snapshot waits for the records; later ones refresh them in the background
            await self._refresh_db()
        elif time.monotonic() - self._db_at > DB_CACHE_S and (self._db_task is None or self._db_task.done()):
            self._db_task = asyncio.get_running_loop().create_task(self._refresh_db())

    def _service_level(self, sessions: dict[str, Any], waiting: dict[str, float]) -> dict[str, Any]:
        entries = dict(self._db)
        for call_id, session in sessions.items():
            rec = getattr(session, "record", None)
            q = (getattr(rec, "extra", None) or {}).get("queue")
            if isinstance(q, dict):
                entries[call_id] = (bool(rec.agent_id), float(q.get("waited_s") or 0.0))
        for call_id, w in waiting.items():
            entries[call_id] = (False, w)
        limit = float(self.settings.service_level_s)
        within = sum(1 for ok, w in entries.values() if ok and w <= limit)
        offered = sum(1 for ok, w in entries.values() if ok or w > limit)
        return {"threshold_s": limit, "answered_within": within, "offered": offered,
                "value": within / offered if offered else None}

    # --- the snapshot ---------------------------------------------------------------------------------------
    async def snapshot(self) -> dict[str, Any]:
        """``{"type": "wall", "at", "calls", "live", "queue", "agents", "service_level", "alerts"}``."""
        await self._ensure_db()
        sessions, desk, bridges = self._parts()
        order = desk.ordered() if desk is not None else []
        queued = {w.call_id: (i + 1, w) for i, w in enumerate(order)}
        agents = dict(desk.agents) if desk is not None else {}
        now = datetime.now(UTC)
        live: list[dict[str, Any]] = []
        for call_id in list(dict.fromkeys([*sessions, *queued])):
            rec = getattr(sessions.get(call_id), "record", None)
            state = "queue" if call_id in queued else "agent" if call_id in bridges else "bot"
            w = queued[call_id][1] if call_id in queued else None
            bridge = bridges.get(call_id)
            handoff = w.handoff if w is not None else getattr(bridge, "context", None)
            agent = agents.get(bridge.agent_id) if bridge is not None else None
            started = getattr(rec, "started_at", None)
            live.append({
                "call_id": call_id, "state": state, "channel": getattr(rec, "channel", "") or "",
                "caller": mask_phone(getattr(rec, "caller", "") or (handoff or {}).get("caller", "")),
                "duration_s": round((now - started).total_seconds(), 1) if started else None,
                "agent": (agent.display_name or agent.username) if agent is not None else "",
                "mood": self.mood(rec, handoff),
            })
        if (others := getattr(self.state, "other_nodes_live", None)) is not None:  # a cluster (ivr.cluster.web)
            live += await asyncio.to_thread(others, {c["call_id"] for c in live})
        waiting = [w.public(i + 1) for i, w in enumerate(order)]
        counts = {s: sum(1 for c in live if c["state"] == s) for s in STATES}
        by_presence = {p: 0 for p in PRESENCE}
        for a in agents.values():
            by_presence[a.presence] = by_presence.get(a.presence, 0) + 1
        limit = int(self.settings.wall_queue_alert)
        text = get_pack(self.settings.language).desk_text  # the wall's words: the pack's desk.yaml
        alerts: list[dict[str, Any]] = []
        if len(waiting) >= limit:
            alerts.append({"kind": "queue", "text": text("wall.alert.queue", waiting=len(waiting), limit=limit)})
        guard = getattr(getattr(getattr(self.state.calls, "parts", None), "asr_engine", None), "overload", None)
        if guard is not None and guard.overloaded:  # ivr/asr/overload.py: new calls get the keypad menu meanwhile
            alerts.append({"kind": "asr_overload", "text": text("wall.alert.asr_overload")})
        for c in live:
            if c["mood"] == "angry":
                alerts.append({"kind": "angry", "call_id": c["call_id"],
                               "text": text("wall.alert.angry", caller=c["caller"] or text("wall.unknown_caller"),
                                            call_id=c["call_id"][:8], state=text(f"wall.state.{c['state']}"))})
        return {
            "type": "wall", "at": now.isoformat(), "calls": {**counts, "total": len(live)}, "live": live,
            "queue": {"length": len(waiting), "longest_wait_s": max((w["waiting_s"] for w in waiting), default=0.0),
                      "waiting": waiting, "alert_at": limit},
            "agents": {"by_presence": by_presence,
                       "list": [a.public() | {"role": a.role} for a in sorted(agents.values(), key=lambda a: a.username)]},
            "service_level": self._service_level(sessions, {w["call_id"]: w["waiting_s"] for w in waiting}),
            "alerts": alerts,
        }

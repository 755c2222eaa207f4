"""Writing and reading call records. One transaction per write; writing the same call again replaces it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from statistics import median

from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload

from ivr.privacy import mask_phone, mask_text
from ivr.services.db import transaction
from ivr.services.records.masking import mask_slots
from ivr.services.records.model import OUTCOMES, CallRecord, TurnRecord
from ivr.services.records.tables import CallRow, TurnRow


class RecordStore:
    """Call records in the project database (SQLite or PostgreSQL). Thread-safe; blocking: call off the loop."""

    def __init__(self, url: str) -> None:
        self.url = url

    # --- writes ---------------------------------------------------------------------------------------
    def save(self, record: CallRecord) -> None:
        """Insert or replace the whole record (turns included), masked. Idempotent by ``call_id``."""
        if record.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {record.outcome!r}; expected one of {', '.join(OUTCOMES)}")
        rec = masked(record)
        with transaction(self.url) as s:
            row = s.get(CallRow, rec.call_id)
            if row is None:
                row = CallRow(call_id=rec.call_id)
                s.add(row)
            else:
                s.execute(delete(TurnRow).where(TurnRow.call_id == rec.call_id))
                s.flush()
            _fill_row(row, rec)
            s.add_all(_turn_row(rec.call_id, t) for t in rec.turns)

    def set_feedback(self, call_id: str, csat: int | None = None, feedback: str | None = None,
                     keywords: list[str] | None = None) -> bool:
        """Attach CSAT (1..5) / free-text feedback to a stored call; False if the call is unknown."""
        if csat is not None and not 1 <= csat <= 5:
            raise ValueError("CSAT must be between 1 and 5")
        with transaction(self.url) as s:
            row = s.get(CallRow, call_id)
            if row is None:
                return False
            if csat is not None:
                row.csat = csat
            if feedback is not None:
                row.feedback = mask_text(feedback)
            if keywords is not None:
                row.feedback_keywords = list(keywords)
            return True

    def purge_before(self, cutoff: datetime) -> list[str]:
        """Delete records that started before ``cutoff``; returns their recording paths (for file removal)."""
        with transaction(self.url) as s:
            rows = s.execute(select(CallRow.call_id, CallRow.recording_path).where(CallRow.started_at < cutoff)).all()
            ids = [r[0] for r in rows]
            if ids:
                s.execute(delete(TurnRow).where(TurnRow.call_id.in_(ids)))
                s.execute(delete(CallRow).where(CallRow.call_id.in_(ids)))
            return [r[1] for r in rows if r[1]]

    # --- reads ----------------------------------------------------------------------------------------
    def older_than(self, cutoff: datetime) -> list[tuple[str, datetime, str]]:
        """(call_id, started_at, recording_path) of records that started before ``cutoff`` (what a purge takes)."""
        with transaction(self.url) as s:
            rows = s.execute(select(CallRow.call_id, CallRow.started_at, CallRow.recording_path)
                             .where(CallRow.started_at < cutoff).order_by(CallRow.started_at)).all()
            return [(r[0], _aware(r[1]), r[2] or "") for r in rows]

    def get(self, call_id: str) -> CallRecord | None:
        with transaction(self.url) as s:
            row = s.execute(
                select(CallRow).options(selectinload(CallRow.turns)).where(CallRow.call_id == call_id)
            ).scalar_one_or_none()
            return None if row is None else _to_record(row)

    def recent(self, limit: int = 50, since: datetime | None = None, channel: str | None = None) -> list[CallRecord]:
        """Most recent first."""
        with transaction(self.url) as s:
            q = select(CallRow).options(selectinload(CallRow.turns)).order_by(CallRow.started_at.desc()).limit(limit)
            if since is not None:
                q = q.where(CallRow.started_at >= since)
            if channel:
                q = q.where(CallRow.channel == channel)
            return [_to_record(r) for r in s.execute(q).scalars()]


def masked(record: CallRecord) -> CallRecord:
    """A copy with caller number, texts and slots masked (idempotent)."""
    turns = [
        replace(t, caller_text=mask_text(t.caller_text), bot_text=mask_text(t.bot_text), slots=mask_slots(t.slots),
                actions=list(t.actions), timing=dict(t.timing))
        for t in record.turns
    ]
    return replace(record, caller=mask_phone(record.caller) if record.caller else "", feedback=mask_text(record.feedback),
                   agent_note=mask_text(record.agent_note), turns=turns, extra=mask_slots(record.extra))


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _fill_row(row: CallRow, rec: CallRecord) -> None:
    lat = rec.latencies_ms()
    row.channel, row.caller, row.caller_key, row.language = rec.channel, rec.caller, rec.caller_key, rec.language
    row.started_at, row.ended_at, row.handle_time_s = rec.started_at, rec.ended_at, rec.handle_time_s
    row.outcome, row.end_reason, row.ended_by = rec.outcome, rec.end_reason, rec.ended_by
    row.transfer_reason, row.asr_mode, row.csat = rec.transfer_reason, rec.asr_mode, rec.csat
    row.feedback, row.feedback_keywords = rec.feedback, list(rec.feedback_keywords)
    row.recording_path, row.agent_id = rec.recording_path, rec.agent_id
    row.disposition, row.agent_note = rec.disposition, rec.agent_note
    row.turn_count = len(rec.turns)
    row.p50_latency_ms = float(median(lat)) if lat else None
    row.extra = dict(rec.extra)


def _turn_row(call_id: str, t: TurnRecord) -> TurnRow:
    return TurnRow(
        call_id=call_id, idx=t.index, kind=t.kind, at=t.at, speaker=t.speaker, caller_text=t.caller_text,
        input_source=t.input_source, asr_confidence=t.asr_confidence, bot_text=t.bot_text, intent=t.intent,
        confidence=t.confidence, slots=t.slots, actions=t.actions, sentiment=t.sentiment, state=t.state,
        barged_in=t.barged_in, segments_played=t.segments_played, latency_ms=t.latency_ms, timing=t.timing,
    )


def _to_record(row: CallRow) -> CallRecord:
    rec = CallRecord(
        call_id=row.call_id, channel=row.channel, caller=row.caller, caller_key=row.caller_key, language=row.language,
        started_at=_aware(row.started_at), ended_at=_aware(row.ended_at), outcome=row.outcome,
        end_reason=row.end_reason, ended_by=row.ended_by, transfer_reason=row.transfer_reason, asr_mode=row.asr_mode,
        csat=row.csat, feedback=row.feedback, feedback_keywords=list(row.feedback_keywords or []),
        recording_path=row.recording_path, agent_id=row.agent_id, disposition=row.disposition,
        agent_note=row.agent_note, extra=dict(row.extra or {}),
    )
    rec.turns = [
        TurnRecord(
            index=t.idx, kind=t.kind, at=_aware(t.at), speaker=t.speaker, caller_text=t.caller_text,
            input_source=t.input_source, asr_confidence=t.asr_confidence, bot_text=t.bot_text, intent=t.intent,
            confidence=t.confidence, slots=dict(t.slots or {}), actions=list(t.actions or []), sentiment=t.sentiment,
            state=t.state, barged_in=t.barged_in, segments_played=t.segments_played, latency_ms=t.latency_ms,
            timing=dict(t.timing or {}),
        )
        for t in row.turns
    ]
    return rec

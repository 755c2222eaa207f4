"""SQLAlchemy tables of call records (schema changes go through an Alembic revision in ivr/services/migrations)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ivr.services.db import Base


class CallRow(Base):
    __tablename__ = "call_records"

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), index=True)
    caller: Mapped[str] = mapped_column(String(32), default="")
    caller_key: Mapped[str] = mapped_column(String(32), default="", index=True)
    language: Mapped[str] = mapped_column(String(16), default="zh-CN")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    handle_time_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), index=True, default="in_progress")
    end_reason: Mapped[str] = mapped_column(String(32), default="")
    ended_by: Mapped[str] = mapped_column(String(16), default="")
    transfer_reason: Mapped[str] = mapped_column(String(200), default="")
    asr_mode: Mapped[str] = mapped_column(String(16), default="asr")
    csat: Mapped[int | None] = mapped_column(Integer, nullable=True)
    feedback: Mapped[str] = mapped_column(Text, default="")
    feedback_keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    recording_path: Mapped[str] = mapped_column(String(500), default="")
    agent_id: Mapped[str] = mapped_column(String(64), default="")
    disposition: Mapped[str] = mapped_column(String(64), default="")
    agent_note: Mapped[str] = mapped_column(Text, default="")
    turn_count: Mapped[int] = mapped_column(Integer, default=0)
    p50_latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    turns: Mapped[list[TurnRow]] = relationship(
        back_populates="call", cascade="all, delete-orphan", order_by="TurnRow.idx", passive_deletes=True
    )


class TurnRow(Base):
    __tablename__ = "call_turns"
    __table_args__ = (UniqueConstraint("call_id", "idx", name="uq_call_turns_call_idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), ForeignKey("call_records.call_id", ondelete="CASCADE"))
    idx: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    speaker: Mapped[str] = mapped_column(String(16), default="bot")
    caller_text: Mapped[str] = mapped_column(Text, default="")
    input_source: Mapped[str] = mapped_column(String(16), default="")
    asr_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    bot_text: Mapped[str] = mapped_column(Text, default="")
    intent: Mapped[str] = mapped_column(String(64), default="", index=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    slots: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actions: Mapped[list[str]] = mapped_column(JSON, default=list)
    sentiment: Mapped[float | None] = mapped_column(Float, nullable=True)
    state: Mapped[str] = mapped_column(String(64), default="")
    barged_in: Mapped[bool] = mapped_column(Boolean, default=False)
    segments_played: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    timing: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    call: Mapped[CallRow] = relationship(back_populates="turns")


Index("ix_call_turns_call_id", TurnRow.call_id)

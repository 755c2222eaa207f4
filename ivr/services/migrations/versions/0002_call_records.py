"""Call records: one row per call (outcome, handle time, CSAT, ...) and one per turn (texts, intent, latency).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_records",
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("caller", sa.String(length=32), nullable=False),
        sa.Column("caller_key", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handle_time_s", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("end_reason", sa.String(length=32), nullable=False),
        sa.Column("ended_by", sa.String(length=16), nullable=False),
        sa.Column("transfer_reason", sa.String(length=200), nullable=False),
        sa.Column("asr_mode", sa.String(length=16), nullable=False),
        sa.Column("csat", sa.Integer(), nullable=True),
        sa.Column("feedback", sa.Text(), nullable=False),
        sa.Column("feedback_keywords", sa.JSON(), nullable=False),
        sa.Column("recording_path", sa.String(length=500), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("disposition", sa.String(length=64), nullable=False),
        sa.Column("agent_note", sa.Text(), nullable=False),
        sa.Column("turn_count", sa.Integer(), nullable=False),
        sa.Column("p50_latency_ms", sa.Float(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("call_id"),
    )
    with op.batch_alter_table("call_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_records_channel"), ["channel"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_records_caller_key"), ["caller_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_records_started_at"), ["started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_records_outcome"), ["outcome"], unique=False)

    op.create_table(
        "call_turns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("speaker", sa.String(length=16), nullable=False),
        sa.Column("caller_text", sa.Text(), nullable=False),
        sa.Column("input_source", sa.String(length=16), nullable=False),
        sa.Column("asr_confidence", sa.Float(), nullable=True),
        sa.Column("bot_text", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("slots", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("sentiment", sa.Float(), nullable=True),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("barged_in", sa.Boolean(), nullable=False),
        sa.Column("segments_played", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("timing", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["call_records.call_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_id", "idx", name="uq_call_turns_call_idx"),
    )
    with op.batch_alter_table("call_turns", schema=None) as batch_op:
        batch_op.create_index("ix_call_turns_call_id", ["call_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_turns_intent"), ["intent"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_turns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_turns_intent"))
        batch_op.drop_index("ix_call_turns_call_id")
    op.drop_table("call_turns")
    with op.batch_alter_table("call_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_records_outcome"))
        batch_op.drop_index(batch_op.f("ix_call_records_started_at"))
        batch_op.drop_index(batch_op.f("ix_call_records_caller_key"))
        batch_op.drop_index(batch_op.f("ix_call_records_channel"))
    op.drop_table("call_records")

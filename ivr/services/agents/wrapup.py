"""After-call work: the agent's disposition code and note, filed on the call record (masked, idempotent)."""

from __future__ import annotations

from ivr.privacy import mask_text
from ivr.services.db import transaction
from ivr.services.records.tables import CallRow

# What agents pick from after a call (the desktop shows these; any other code is refused).
DISPOSITIONS = ("resolved", "follow_up", "callback_promised", "escalated", "wrong_number", "no_issue", "other")


def save_wrapup(url: str, call_id: str, agent_id: str, disposition: str, note: str = "") -> bool:
    """Write the disposition and note on the stored call; False if the call is unknown or was not this agent's."""
    if disposition not in DISPOSITIONS:
        raise ValueError(f"disposition must be one of {', '.join(DISPOSITIONS)}")
    if len(note) > 2000:
        raise ValueError("note: at most 2000 characters")
    with transaction(url) as s:
        row = s.get(CallRow, call_id)
        if row is None or (row.agent_id and row.agent_id != agent_id):
            return False
        row.agent_id = agent_id
        row.disposition = disposition
        row.agent_note = mask_text(note)
        return True

"""Call records: what happened on every call (turns, latencies, outcome), PII masked at write time.

``CallRecord``/``TurnRecord`` are plain dataclasses the call session fills in; ``RecordStore`` writes them
(idempotently, one transaction per call) to the ``call_records``/``call_turns`` tables and reads them back.
"""

from ivr.services.records.model import OUTCOMES, CallRecord, TurnRecord
from ivr.services.records.store import RecordStore

__all__ = ["OUTCOMES", "CallRecord", "RecordStore", "TurnRecord"]

"""Plain values of the shared cluster state (no imports from the rest of ivr.cluster)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class LiveCall:
    """One call live on some node: ``url`` is the node's HTTP address (actions on the call are sent there)."""

    call_id: str
    node: str
    url: str
    channel: str = ""
    started_at: float = 0.0  # epoch seconds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def queue_score(priority: int, arrived: float) -> float:
    """Higher priority first, then earlier arrival: one sortable number (priority in 0..999)."""
    return (999 - max(0, min(999, priority))) * 1e10 + arrived

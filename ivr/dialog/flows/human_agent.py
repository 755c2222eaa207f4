"""Human agent: a transfer with the structured hand-off (the manager also handles the request globally)."""

from __future__ import annotations

from ivr.dialog.flows.base import Flow


class HumanAgentFlow(Flow):
    intent = "human_agent"

    def begin(self, m, inp) -> None:
        m.transfer("human_request")

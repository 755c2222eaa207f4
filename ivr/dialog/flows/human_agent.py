"""Human agent: a transfer with the structured hand-off (the manager also handles the request globally)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.dialog.flows.base import Flow

if TYPE_CHECKING:
    from ivr.dialog.context import Input
    from ivr.dialog.host import FlowHost


class HumanAgentFlow(Flow):
    intent = "human_agent"

    def begin(self, m: FlowHost, inp: Input) -> None:
        m.transfer("human_request")

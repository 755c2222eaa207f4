"""Callers for the agent-side browser tests: in-process lines (LocalPort) that reach an agent the way a caller does."""

from __future__ import annotations

import asyncio

from ivr.call.local import LocalPort
from ivr.call.manager import CallManager


async def verified_caller_asks_for_agent(manager: CallManager, order: str, tail: str) -> LocalPort:
    """A withheld-number web caller who picks the order menu by key, proves ``order`` with the phone ``tail``,
    then presses 0 for a person; returns the line (the call is queued for agents)."""
    port = LocalPort(channel="webrtc")  # withheld number: the bot asks for the order and the phone tail
    port.start()
    manager.start_call(port, manager.reserve(port.info.call_id))
    await port.wait_bot(1, quiet=False)
    port.press("1")
    await port.wait_bot(2, quiet=False)
    for d in order + "#":
        port.press(d)
    await port.wait_bot(3, quiet=False)
    for d in tail:
        port.press(d)
    await port.wait_bot(4, quiet=False)
    await asyncio.sleep(1.0)
    port.press("0")
    return port

"""A change on this node that lands while a sync round runs is told to the other nodes after the round that wrote
it (ivr.cluster.web._sync with ivr.cluster.wake): once, the 'tell' was spent on the round that had started before
the change, so the other node saw it only at its next 1-s tick (a 1.03-s offer lag in a fresh-clone run)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from ivr.cluster import web


class Shared:
    """The parts of SharedState the loop uses; records what was published after which write."""

    shared = True

    def __init__(self) -> None:
        self.written: list[str] = []  # the live calls each round wrote
        self.told: list[list[str]] = []  # what had been written when each message went out

    def publish(self, channel: str, msg: dict) -> None:
        self.told.append(list(self.written))

    async def subscribe(self, channel: str):
        await asyncio.Event().wait()
        yield {}


@pytest.mark.timeout(30)
async def test_a_change_during_a_round_is_told_after_the_round_that_wrote_it(monkeypatch):
    shared = Shared()
    app = SimpleNamespace(state=SimpleNamespace(shared=shared, node="n1", calls=SimpleNamespace(sessions={})))
    rounds = 0

    async def a_round(app_, announced, queued):
        nonlocal rounds
        rounds += 1
        written = ",".join(app.state.calls.sessions)  # what this round read and wrote
        if rounds == 2:  # a caller arrives while this round runs, after it read the node's state
            app.state.calls.sessions["c1"] = object()
            await asyncio.sleep(0.2)  # long enough for the watcher to see the change mid-round
        shared.written.append(written)
        return announced, queued

    monkeypatch.setattr(web, "_round", a_round)
    task = asyncio.create_task(web._sync(app))
    try:
        for _ in range(300):
            if any("c1" in w for told in shared.told for w in told):
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert rounds < 10, rounds  # no busy loop
    told_after_write = [told for told in shared.told if told and told[-1] == "c1"]
    assert told_after_write, f"c1 was written {shared.written} but never told after: {shared.told}"

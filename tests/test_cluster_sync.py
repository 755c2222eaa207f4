"""The nodes' sync loop (ivr/cluster/web.py) on a real Redis, two nodes in one process: after Redis was away for
longer than the heartbeat TTL (every heartbeat expired), the node whose connection comes back first does not take
the other, still alive, for dead (its live calls ended as node_lost, its waiting callers booked callbacks): no node
is judged before every node has had the TTL to announce itself again. A node that really stays silent is."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from test_cluster_state import redis_url  # noqa: F401  (fixture: a private redis-server)

from ivr.cluster import web
from ivr.cluster.redis_state import RedisState
from ivr.services.migrate import ensure_schema

pytestmark = [pytest.mark.live_light, pytest.mark.timeout(60)]


class Flaky:
    """A node's view of Redis that can be cut (``down``): every call raises as with Redis unreachable."""

    shared = True

    def __init__(self, inner: RedisState) -> None:
        self.inner, self.down = inner, False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name == "subscribe" or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise ConnectionError("Redis unreachable (test)")
            return attr(*args, **kwargs)

        return call


def _node(name: str, url: str, db_url: str, calls: list[str]) -> SimpleNamespace:
    sessions = {cid: SimpleNamespace(record=None, info=None) for cid in calls}
    settings = SimpleNamespace(host="127.0.0.1", port=1, node_url=f"http://{name}", database_url=db_url)
    return SimpleNamespace(state=SimpleNamespace(shared=Flaky(RedisState(url)), node=name, settings=settings,
                                                 calls=SimpleNamespace(sessions=sessions)))


async def test_a_node_back_from_a_redis_outage_first_does_not_take_the_other_for_dead(redis_url, tmp_path,  # noqa: F811
                                                                                      caplog):
    RedisState(redis_url).r.flushdb()
    db_url = f"sqlite:///{tmp_path / 'records.db'}"
    ensure_schema(db_url)
    a, b = _node("nodeA", redis_url, db_url, []), _node("nodeB", redis_url, db_url, ["call-b"])
    caplog.set_level(logging.WARNING, logger="ivr.cluster.web")
    loops = [asyncio.create_task(web._sync(n)) for n in (a, b)]
    view = RedisState(redis_url)
    try:
        await asyncio.sleep(1.5)
        assert view.owner("call-b").node == "nodeB" and set(view.nodes()) == {"nodeA", "nodeB"}
        a.state.shared.down = b.state.shared.down = True
        await asyncio.sleep(web.TTL_S + 1.0)  # every heartbeat has expired
        assert view.nodes() == {}
        a.state.shared.down = False  # A is back first, B 1.5 s later
        await asyncio.sleep(1.5)
        b.state.shared.down = False
        await asyncio.sleep(web.TTL_S + 1.0)
        assert view.owner("call-b").node == "nodeB" and view.calls_of("nodeB") == ["call-b"]
        assert "is gone" not in caplog.text, caplog.text

        b.state.shared.down = True  # B silent for good: taken over once its TTL and A's wait have passed
        await asyncio.sleep(web.TTL_S + 2 * web.SYNC_S + 0.5)
        assert view.calls_of("nodeB") == [] and "node nodeB is gone" in caplog.text, caplog.text
    finally:
        for t in loops:
            t.cancel()
        for t in loops:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        view.close()

"""The shared live state in Redis (``redis_url``): every node of a cluster reads and writes the same keys.

Keys (prefix ``ivr:``): ``node:<name>`` (HTTP address, expires), ``call:<id>`` (a live call as JSON, expires),
``nodecalls:<name>`` (the call ids a node announced: what a dead node leaves behind), ``thr:<name>:<key>``
(sorted set of failure times) and ``thrp:<name>:<key>`` (attempts in flight, expires), ``presence:<agent>``
(expires), ``queue`` (sorted set by priority then arrival) with ``queue:data`` (hash), ``claim:<key>``
(one holder, expires: ``claim:offer:<call_id>`` = the node and agent a waiting caller is offered to), and pub/sub channels
``ivr:events:<channel>``. Expiry is Redis's own: a node that dies stops refreshing and its entries go.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import redis
import redis.asyncio as aredis

from ivr.cluster.types import LiveCall, queue_score

P = "ivr:"


class RedisThrottle:
    """Failure windows per key in Redis (the same semantics as :class:`ivr.web.throttle.Windows`)."""

    def __init__(self, r: redis.Redis, name: str, limit: int, window_s: float) -> None:
        self.r, self.name, self.limit, self.window_s = r, name, limit, window_s

    def _keys(self, key: str) -> tuple[str, str]:
        return f"{P}thr:{self.name}:{key}", f"{P}thrp:{self.name}:{key}"

    def blocked_for(self, key: str) -> float:
        hits, pending = self._keys(key)
        now = time.time()
        with self.r.pipeline() as p:
            p.zremrangebyscore(hits, "-inf", now - self.window_s)
            p.zcard(hits)
            p.get(pending)
            p.zrange(hits, 0, 0, withscores=True)
            _, n, inflight, first = p.execute()
        total = int(n) + int(inflight or 0)
        if total < self.limit:
            return 0.0
        return max(1.0, self.window_s - (now - first[0][1])) if first else 1.0

    def begin(self, key: str) -> None:
        _, pending = self._keys(key)
        with self.r.pipeline() as p:
            p.incr(pending)
            p.expire(pending, 60)  # a node that dies mid-check does not lock the key for ever
            p.execute()

    def end(self, key: str, failed: bool | None) -> None:
        hits, pending = self._keys(key)
        now = time.time()
        with self.r.pipeline() as p:
            p.decr(pending)
            if failed:
                p.zadd(hits, {f"{now:.6f}:{secrets.token_hex(4)}": now})
                p.zremrangebyscore(hits, "-inf", now - self.window_s)
                p.zremrangebyrank(hits, 0, -(self.limit + 1))
                p.expire(hits, int(self.window_s) + 1)
            elif failed is False:
                p.delete(hits)
            p.execute()


class RedisState:
    """:class:`ivr.cluster.shared.SharedState` in Redis."""

    shared = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.r = redis.Redis.from_url(url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2,
                                      health_check_interval=10)

    # --- nodes and the live-call index ------------------------------------------------------------------
    def heartbeat(self, node: str, url: str, ttl_s: float) -> None:
        self.r.set(f"{P}node:{node}", url, px=int(ttl_s * 1000))

    def nodes(self) -> dict[str, str]:
        keys = sorted(self.r.scan_iter(f"{P}node:*", count=100))
        vals = self.r.mget(keys) if keys else []
        return {k.removeprefix(f"{P}node:"): v for k, v in zip(keys, vals, strict=True) if v is not None}

    def put_calls(self, calls: list[LiveCall], ttl_s: float) -> None:
        if not calls:
            return
        with self.r.pipeline() as p:
            for c in calls:
                p.set(f"{P}call:{c.call_id}", json.dumps(c.as_dict()), px=int(ttl_s * 1000))
                p.sadd(f"{P}nodecalls:{c.node}", c.call_id)
            p.execute()

    def drop_call(self, call_id: str) -> None:
        raw = self.r.get(f"{P}call:{call_id}")
        with self.r.pipeline() as p:
            p.delete(f"{P}call:{call_id}")
            if raw:
                p.srem(f"{P}nodecalls:{json.loads(raw)['node']}", call_id)
            p.execute()

    def owner(self, call_id: str) -> LiveCall | None:
        raw = self.r.get(f"{P}call:{call_id}")
        return LiveCall(**json.loads(raw)) if raw else None

    def live_calls(self) -> list[LiveCall]:
        keys = list(self.r.scan_iter(f"{P}call:*", count=200))
        vals = self.r.mget(keys) if keys else []
        return sorted((LiveCall(**json.loads(v)) for v in vals if v), key=lambda c: c.started_at)

    def calls_of(self, node: str) -> list[str]:
        return sorted(self.r.smembers(f"{P}nodecalls:{node}"))

    def forget_node(self, node: str) -> list[str]:
        """Take a dead node's leftovers once: only the first caller gets the call ids (the set is renamed away)."""
        grabbed = f"{P}nodecalls-taken:{node}:{time.time_ns()}"
        try:
            self.r.rename(f"{P}nodecalls:{node}", grabbed)
        except redis.ResponseError:  # no such key: nothing left, or another node took it
            return []
        ids = sorted(self.r.smembers(grabbed))
        with self.r.pipeline() as p:
            p.delete(grabbed, *(f"{P}call:{cid}" for cid in ids))
            p.execute()
        return ids

    # --- login throttles ---------------------------------------------------------------------------------
    def throttle(self, name: str, limit: int, window_s: float) -> RedisThrottle:
        return RedisThrottle(self.r, name, limit, window_s)

    # --- agent presence --------------------------------------------------------------------------------
    def set_presence(self, agent_id: str, node: str, presence: str, ttl_s: float) -> None:
        self.r.set(f"{P}presence:{agent_id}", json.dumps({"node": node, "presence": presence}),
                   px=int(ttl_s * 1000))

    def presence(self) -> dict[str, dict[str, str]]:
        keys = sorted(self.r.scan_iter(f"{P}presence:*", count=200))
        vals = self.r.mget(keys) if keys else []
        return {k.removeprefix(f"{P}presence:"): json.loads(v) for k, v in zip(keys, vals, strict=True) if v}

    _DROP_PRESENCE = ("local v = redis.call('GET', KEYS[1]) "
                      "if v and cjson.decode(v).node == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0")

    def drop_presence(self, agent_id: str, node: str) -> None:
        self.r.eval(self._DROP_PRESENCE, 1, f"{P}presence:{agent_id}", node)

    # --- the ACD queue ------------------------------------------------------------------------------------
    def enqueue(self, ticket: str, priority: int, data: dict[str, Any]) -> None:
        with self.r.pipeline() as p:
            p.zadd(f"{P}queue", {ticket: queue_score(priority, time.time())}, nx=True)
            p.hsetnx(f"{P}queue:data", ticket, json.dumps(data))
            p.execute()

    def queue(self) -> list[tuple[str, dict[str, Any]]]:
        tickets = self.r.zrange(f"{P}queue", 0, -1)
        vals = self.r.hmget(f"{P}queue:data", tickets) if tickets else []
        return [(t, json.loads(v) if v else {}) for t, v in zip(tickets, vals, strict=True)]

    def take(self) -> tuple[str, dict[str, Any]] | None:
        """The head of the queue, atomically: two nodes taking at once never get the same ticket."""
        popped = self.r.zpopmin(f"{P}queue", 1)
        if not popped:
            return None
        ticket = popped[0][0]
        with self.r.pipeline() as p:
            p.hget(f"{P}queue:data", ticket)
            p.hdel(f"{P}queue:data", ticket)
            raw, _ = p.execute()
        return ticket, json.loads(raw) if raw else {}

    def remove(self, ticket: str) -> bool:
        with self.r.pipeline() as p:
            p.zrem(f"{P}queue", ticket)
            p.hdel(f"{P}queue:data", ticket)
            removed, _ = p.execute()
        return bool(removed)

    # --- claims (one holder at a time, expiring) ------------------------------------------------------
    _RECLAIM = ("local v = redis.call('GET', KEYS[1]) if v and v ~= ARGV[1] then return 0 end "
                "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1")
    _UNCLAIM = ("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0")

    def claim(self, key: str, value: str, ttl_s: float) -> bool:
        if self.r.set(f"{P}claim:{key}", value, nx=True, px=int(ttl_s * 1000)):
            return True
        return self.r.get(f"{P}claim:{key}") == value

    def reclaim(self, key: str, value: str, ttl_s: float) -> bool:
        return bool(self.r.eval(self._RECLAIM, 1, f"{P}claim:{key}", value, int(ttl_s * 1000)))

    def unclaim(self, key: str, value: str) -> None:
        self.r.eval(self._UNCLAIM, 1, f"{P}claim:{key}", value)

    # --- events ----------------------------------------------------------------------------------------
    def publish(self, channel: str, event: dict[str, Any]) -> None:
        self.r.publish(f"{P}events:{channel}", json.dumps(event, ensure_ascii=False))

    async def subscribe(self, channel: str) -> AsyncIterator[dict[str, Any]]:
        client = aredis.Redis.from_url(self.url, decode_responses=True)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(f"{P}events:{channel}")
        try:
            while True:
                msg = await pubsub.get_message(timeout=1.0)
                if msg is not None and msg.get("type") == "message":
                    yield json.loads(msg["data"])
        finally:
            await pubsub.aclose()
            await client.aclose()

    def close(self) -> None:
        self.r.close()

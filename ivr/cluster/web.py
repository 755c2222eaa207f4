"""The node's part in a cluster (a router module of ivr.web.app): it shares its live state and uses the others'.

* Every ``SYNC_S`` the node refreshes its heartbeat and its live calls in the shared state (``redis_url``; in
  process without it), and publishes ``call_started`` / ``call_ended`` on the ``calls`` event channel. With Redis
  the round also runs at once when this node's calls, agents or queue change, or another node says its did
  (:mod:`ivr.cluster.wake`).
* ``/api/calls/{id}`` (GET, DELETE) and ``/api/calls/{id}/dtmf`` for a call live on another node are forwarded
  to that node (``X-Ivr-Forwarded`` marks the hop; a forwarded request is never forwarded again). The owner
  checks the call token, login and Origin as if the request had come to it.
* The agent desktop's ``/api/agent/calls/{id}`` (card), ``/hangup`` and ``/hold`` for a call held by another
  node go there too (an agent of this node on another node's call: :mod:`ivr.cluster.dispatch`).
* Login throttles (per username, per client address) count failures from every node.
* The node's signed-in agents (presence, expiring) and waiting callers (the shared queue) are mirrored each round
  (:mod:`ivr.cluster.desk_share`) and the other nodes' waiting callers are offered to this node's agents
  (:mod:`ivr.cluster.dispatch`); the supervisor wall lists the other nodes' live calls (``other_nodes_live``).
* A node whose heartbeat expired leaves its call records ``in_progress``: the first survivor to notice takes
  them over once and ends them as ``failed`` / ``node_lost``, so no record stays open for ever, and books its
  waiting callers a callback ticket.
* SIGTERM drains the node (:mod:`ivr.cluster.drain`); ``GET /api/cluster/health`` is HAProxy's check (404 while
  draining).
* ``GET /api/cluster`` (supervisor, admin): the nodes alive, the live calls of all nodes, agent presence, the
  shared queue. ``GET /api/cluster/events``: the ``calls`` events of every node as Server-Sent Events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ivr.cluster.desk_share import desk_fingerprint, mirror, public_queue, snapshot, take_over_queue
from ivr.cluster.dispatch import ClusterDesk
from ivr.cluster.dispatch import router as dispatch_router
from ivr.cluster.drain import drain
from ivr.cluster.shared import LiveCall, SharedState, open_state
from ivr.cluster.wake import Wake
from ivr.config import Settings
from ivr.services.agents import Account
from ivr.web.auth import DASHBOARD, LOCK_AFTER, LOCK_WINDOW_S
from ivr.web.throttle import HashGate

log = logging.getLogger(__name__)
router = APIRouter()
router.include_router(dispatch_router)
SYNC_S = 1.0
TTL_S = 3 * SYNC_S  # a node silent this long is gone: its calls leave the index, its records are taken over
FORWARDED = "X-Ivr-Forwarded"
CALL_PATH = re.compile(r"^/api/calls/(?!webrtc$)([A-Za-z0-9_.:@-]{1,128})(/dtmf)?$"
                       r"|^/api/agent/calls/([A-Za-z0-9_.:@-]{1,128})(/hangup|/hold)?$")  # not the wrap-up
PASS_BACK = ("content-type", "retry-after", "www-authenticate", "cache-control")


def node_name(settings: Settings) -> str:
    return settings.node_name or socket.gethostname()


def node_url(settings: Settings) -> str:
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else socket.gethostname()
    return settings.node_url or f"http://{host}:{settings.port}"


def setup(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    state = app.state.shared = open_state(settings.redis_url)
    app.state.node = node_name(settings)
    if state.shared:
        app.state.login_guards = (state.throttle("user", LOCK_AFTER, LOCK_WINDOW_S),
                                  state.throttle("ip", settings.login_ip_max_failures, LOCK_WINDOW_S),
                                  HashGate(settings.login_hash_concurrency, settings.login_hash_queue))

        from ivr.web.auth import service_secret

        app.state.cluster_desk = ClusterDesk(state, app.state.node, service_secret(settings), settings.database_url)
        app.state.drain = lambda: drain(app, settings.drain_timeout_s)  # SIGTERM (ivr serve: DrainingServer)
    app.add_middleware(ForwardCalls, service=app)
    app.state.other_nodes_live = lambda known: other_nodes_live(app, known)  # the wall's hook (ivr.web.wallstate)


def other_nodes_live(app: FastAPI, known: set[str]) -> list[dict[str, Any]]:
    """The other nodes' live calls as the supervisor wall lists them (blocking; none without Redis)."""
    state: SharedState = app.state.shared
    if not state.shared:
        return []
    queued = {t for t, _ in state.queue()}
    now = time.time()
    return [{"call_id": c.call_id, "state": "queue" if c.call_id in queued else "bot", "channel": c.channel,
             "caller": "", "duration_s": round(now - c.started_at, 1) if c.started_at else None, "agent": "",
             "mood": "calm", "node": c.node}
            for c in state.live_calls() if c.node != app.state.node and c.call_id not in known]


class ForwardCalls:
    """ASGI middleware: a call action for a call live on another node goes to that node; all else passes."""

    def __init__(self, app: ASGIApp, service: FastAPI) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: SharedState = self.service.state.shared
        m = CALL_PATH.match(scope.get("path", "")) if scope["type"] == "http" and state.shared else None
        if m is not None:
            request = Request(scope, receive)
            calls = self.service.state.calls
            call_id = m.group(1) or m.group(3)
            if not request.headers.get(FORWARDED) and (calls is None or call_id not in calls.sessions):
                try:
                    owner = await asyncio.to_thread(state.owner, call_id)
                except Exception as e:  # Redis away: answer from this node (its own calls still work)
                    log.warning("call index unreachable: %s", e)
                    owner = None
                if owner is not None and owner.node != self.service.state.node:
                    response = await _forward(request, owner, self.service.state.settings)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


async def _forward(request: Request, owner: LiveCall, settings: Settings) -> Response:
    """The same request to the node that holds the call; its answer back as it came."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > settings.http_max_body_bytes:
            return JSONResponse({"error": "request body too large"}, status_code=413)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("content-length", "connection")}
    headers[FORWARDED] = request.app.state.node
    client = request.client.host if request.client else ""
    headers["x-forwarded-for"] = ", ".join(x for x in (request.headers.get("x-forwarded-for"), client) if x)
    try:
        async with httpx.AsyncClient(timeout=10) as c:
            r = await c.request(request.method, owner.url + request.url.path, params=request.query_params,
                                content=body, headers=headers)
    except httpx.HTTPError as e:
        log.warning("call %s: its node %s (%s) did not answer: %s", owner.call_id, owner.node, owner.url, e)
        return JSONResponse({"error": f"the node holding call {owner.call_id} did not answer",
                             "node": owner.node}, status_code=502)
    out = {k: v for k, v in r.headers.items() if k.lower() in PASS_BACK}
    out[FORWARDED] = owner.node
    return Response(r.content, status_code=r.status_code, headers=out)


def _live(app: FastAPI) -> list[LiveCall]:
    calls, me, url = app.state.calls, app.state.node, node_url(app.state.settings)
    out = []
    for cid, session in list(getattr(calls, "sessions", {}).items()):
        rec = getattr(session, "record", None)
        started = rec.started_at.timestamp() if rec is not None and rec.started_at else time.time()
        out.append(LiveCall(cid, me, url, getattr(rec, "channel", ""), started))
    return out


def take_over_records(db_url: str, call_ids: list[str]) -> int:
    """End the records a dead node left ``in_progress`` as failed (end_reason ``node_lost``); returns how many."""
    from sqlalchemy import update

    from ivr.services.db import transaction
    from ivr.services.records.tables import CallRow

    if not call_ids:
        return 0
    with transaction(db_url) as s:
        res = s.execute(update(CallRow).where(CallRow.call_id.in_(call_ids), CallRow.outcome == "in_progress")
                        .values(outcome="failed", end_reason="node_lost", ended_by="system",
                                ended_at=datetime.now(UTC)))
        return int(res.rowcount or 0)


def orphaned_records(db_url: str, claimed: set[str], older_than_s: float) -> list[str]:
    """Voice calls (sip, webrtc) still ``in_progress`` in the database that no live node claims although they
    started ``older_than_s`` ago (every node announces its calls each round): a dead node's calls it took in after
    its last round. Chats and other channels are not judged (they are not in the call index)."""
    from datetime import timedelta

    from sqlalchemy import select

    from ivr.services.db import transaction
    from ivr.services.records.tables import CallRow

    now = datetime.now(UTC)
    with transaction(db_url) as s:
        ids = s.execute(select(CallRow.call_id).where(
            CallRow.outcome == "in_progress", CallRow.channel.in_(("sip", "webrtc")),
            CallRow.started_at < now - timedelta(seconds=older_than_s),
            CallRow.started_at > now - timedelta(days=1))).scalars().all()
    return [cid for cid in ids if cid not in claimed]


async def _sync(app: FastAPI) -> None:
    state: SharedState = app.state.shared
    announced: dict[str, LiveCall] = {}
    queued: set[str] = set()
    seen_nodes: set[str] = set()
    checked = 0.0  # when dead nodes were last looked for
    ok_since: float | None = None  # the first good round since the shared state was last unreachable
    wake = Wake(state, app.state.node, lambda: _fingerprint(app)) if state.shared else None  # rounds on changes
    if wake is not None:
        wake.start()
    try:
        while True:
            try:
                # taken before the round reads this node's state: a change seen while the round runs marks the
                # next round to tell (taken after, it was spent on a round that had not written it: a 1-s lag)
                changed = wake is not None and wake.changed()
                announced, queued = await _round(app, announced, queued)
                ok_since = ok_since or time.monotonic()
                if changed:
                    await asyncio.to_thread(wake.tell)  # the other nodes read this round's writes now
                # after Redis was away every heartbeat may have expired: judge no node dead before all have had
                # time to announce themselves again
                if state.shared and time.monotonic() - checked >= SYNC_S and time.monotonic() - ok_since >= TTL_S:
                    checked = time.monotonic()
                    await _take_over(app, seen_nodes, set(announced))
            except Exception:  # Redis away for a moment: try again next round, calls go on
                ok_since = None
                log.exception("cluster state sync failed")
            await (asyncio.sleep(SYNC_S) if wake is None else wake.wait(SYNC_S))
    finally:
        if wake is not None:
            wake.stop()


async def _round(app: FastAPI, announced: dict[str, LiveCall], queued: set[str]
                 ) -> tuple[dict[str, LiveCall], set[str]]:
    """Heartbeat, live calls (and their events), presence and queue, offers across nodes; returns what was
    announced (live calls, queued tickets) for the next round."""
    state: SharedState = app.state.shared
    me, url = app.state.node, node_url(app.state.settings)
    live = {c.call_id: c for c in _live(app)}
    await asyncio.to_thread(state.heartbeat, me, url, TTL_S)
    await asyncio.to_thread(state.put_calls, list(live.values()), TTL_S)
    for cid in live.keys() - announced.keys():
        await asyncio.to_thread(state.publish, "calls", {"type": "call_started", **live[cid].as_dict()})
    for cid in announced.keys() - live.keys():
        await asyncio.to_thread(state.drop_call, cid)
        await asyncio.to_thread(state.publish, "calls", {"type": "call_ended", **announced[cid].as_dict()})
    calls = app.state.calls
    phones = {cid: getattr(getattr(s, "info", None), "caller_id", "") or ""
              for cid, s in list(getattr(calls, "sessions", {}).items())}
    cd: ClusterDesk | None = getattr(app.state, "cluster_desk", None)
    snap = snapshot(getattr(calls, "desk", None), me, phones, cd.remote_agents if cd is not None else ())
    if getattr(app.state, "draining", False):
        snap = ([], snap[1])  # its agents take no caller now: not in the shared presence
    queued = await asyncio.to_thread(mirror, state, me, snap, queued, TTL_S)
    if cd is not None:
        try:
            await cd.round()
        except Exception:  # offers across nodes wait a round; the take-over must not
            log.exception("offering other nodes' callers failed")
    return live, queued


async def _take_over(app: FastAPI, seen_nodes: set[str], live: set[str]) -> None:
    """A node whose heartbeat expired: its open records ended as node_lost, its waiting callers booked a
    callback (once, by the first survivor to see it)."""
    state: SharedState = app.state.shared
    me, db_url = app.state.node, app.state.settings.database_url
    alive = await asyncio.to_thread(state.nodes)
    seen_nodes |= set(alive) | {c.node for c in await asyncio.to_thread(state.live_calls)}
    for gone in seen_nodes - set(alive) - {me}:
        ids = await asyncio.to_thread(state.forget_node, gone)
        claimed = {c.call_id for c in await asyncio.to_thread(state.live_calls)} | live
        orphans = await asyncio.to_thread(orphaned_records, db_url, claimed | set(ids), 2 * SYNC_S)
        if ids or orphans:
            n = await asyncio.to_thread(take_over_records, db_url, ids + orphans)
            log.warning("node %s is gone: took over %d of its call records (%d live calls lost)", gone, n, len(ids))
        shop = getattr(getattr(app.state.calls, "parts", None), "shop", None)
        tickets = await asyncio.to_thread(take_over_queue, state, gone, shop) if shop else []
        if ids or tickets:
            await asyncio.to_thread(state.publish, "calls", {"type": "node_lost", "node": gone, "calls": ids,
                                                             "callbacks": tickets})
        seen_nodes.discard(gone)


def _fingerprint(app: FastAPI) -> tuple:
    """What this node shares and others wait for: its live calls, its agents' presence, its waiting callers."""
    calls = app.state.calls
    cd: ClusterDesk | None = getattr(app.state, "cluster_desk", None)
    return (tuple(getattr(calls, "sessions", {})), getattr(app.state, "draining", False),
            desk_fingerprint(getattr(calls, "desk", None), cd.remote_agents if cd is not None else ()))


async def startup(app: FastAPI) -> None:
    cd: ClusterDesk | None = getattr(app.state, "cluster_desk", None)
    desk = getattr(app.state.calls, "desk", None)
    if cd is not None and desk is not None:
        cd.attach(desk)  # offers across nodes (ivr.cluster.dispatch)
    app.state.cluster_sync = asyncio.get_running_loop().create_task(_sync(app))


async def shutdown(app: FastAPI) -> None:
    cd: ClusterDesk | None = getattr(app.state, "cluster_desk", None)
    if cd is not None:
        cd.detach()
    task = getattr(app.state, "cluster_sync", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    app.state.shared.close()


@router.get("/api/cluster/health", include_in_schema=False)
def cluster_health(request: Request) -> JSONResponse:
    """HAProxy's check (``http-check disable-on-404``): 200 taking work; 404 draining (no new browsers, but the
    ones stuck here stay); 503 stopping."""
    calls = request.app.state.calls
    if getattr(request.app.state, "draining", False):
        return JSONResponse({"status": "draining", "node": request.app.state.node}, status_code=404)
    ok = calls is None or calls.accepting
    return JSONResponse({"status": "ok" if ok else "shutting_down", "node": request.app.state.node},
                        status_code=200 if ok else 503)


@router.get("/api/cluster")
async def cluster_view(request: Request, acc: Account = DASHBOARD) -> JSONResponse:
    state: SharedState = request.app.state.shared

    def read() -> dict[str, Any]:
        calls = state.live_calls() if state.shared else _live(request.app)
        return {"node": request.app.state.node, "shared": state.shared, "nodes": state.nodes(),
                "live_calls": [c.as_dict() for c in calls], "presence": state.presence(),
                "queue": public_queue(state)}

    return JSONResponse(await asyncio.to_thread(read), headers={"Cache-Control": "no-store"})


@router.get("/api/cluster/events")
async def cluster_events(request: Request, acc: Account = DASHBOARD) -> StreamingResponse:
    state: SharedState = request.app.state.shared

    async def stream() -> AsyncIterator[bytes]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)

        async def pump() -> None:
            async for ev in state.subscribe("calls"):
                with contextlib.suppress(asyncio.QueueFull):  # a stalled reader loses events, not memory
                    q.put_nowait(ev)

        task = asyncio.get_running_loop().create_task(pump())
        yield b": connected\n\n"
        try:
            while not await request.is_disconnected():
                try:
                    ev = await asyncio.wait_for(q.get(), 15)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                yield f"data: {json.dumps(ev, ensure_ascii=False)}\n\n".encode()
        finally:
            task.cancel()

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

"""Draining a cluster node on SIGTERM: it takes no new work, lets the work it has end, then exits.

With ``redis_url`` set, :mod:`ivr.cluster.web` puts :func:`drain` on ``app.state.drain`` and ``ivr serve`` runs
:class:`DrainingServer`; the first SIGTERM starts the drain while HTTP and SIP go on serving the node's calls:

1. New work goes elsewhere: ``/health`` and new WebRTC calls get 503, the SIP gateway answers INVITEs and
   OPTIONS probes 503 (Kamailio retries the INVITE on another node at once and marks this one down at its next
   probe), HAProxy's check (``/api/cluster/health``) gets 404: HAProxy sends no new browser, call or chat here
   but keeps sending the ones that are here (their cookie or chat id).
2. The node's agents are offered no caller and leave the shared presence (other nodes stop counting them); its
   waiting callers stay in the shared queue, offered to the other nodes' agents.
3. It waits until its calls have ended by themselves (SIP, WebRTC; an agent on a call or in wrap-up; a chat
   active within ``CHAT_ACTIVE_S``), at most ``drain_timeout_s``. Then callers still waiting for an agent get
   the queue time-out's callback ticket (read back to them), and ``CALLBACK_GRACE_S`` later the usual shutdown
   says goodbye to whoever is left.
4. uvicorn's shutdown follows as for any stop. A second SIGTERM, or SIGINT, stops at once.

Without ``app.state.drain`` (one node) :class:`DrainingServer` is uvicorn's server unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger(__name__)
POLL_S = 0.2
CHAT_ACTIVE_S = 120.0  # a chat whose last message is older does not keep a draining node
CALLBACK_GRACE_S = 30.0  # after the drain timeout: time for the waiting callers to hear their ticket number


def pending(app: Any) -> dict[str, int]:
    """What keeps a draining node: calls (live or being set up), agents on a call or in wrap-up, live chats."""
    calls = app.state.calls
    desk = getattr(calls, "desk", None)
    hub = getattr(app.state, "chat_hub", None)
    now = time.monotonic()
    chats = [s for s in list(getattr(hub, "_sessions", {}).values())
             if not s.closed and now - s.last_active < CHAT_ACTIVE_S]
    return {"calls": calls.active if calls is not None else 0,
            "agents": sum(1 for a in list(desk.agents.values()) if a.presence in ("busy", "ringing", "wrap_up"))
            if desk is not None else 0,
            "chats": len(chats)}


async def drain(app: Any, timeout_s: float) -> None:
    """Steps 1-3 of the module docstring; returns when the node may stop."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    app.state.draining = True
    calls = app.state.calls
    if calls is not None:
        calls.accepting = False
    sip = getattr(app.state, "sip", None)
    if sip is not None:
        sip.stop_accepting()
    cd = getattr(app.state, "cluster_desk", None)
    if cd is not None:
        node = app.state.node
        for agent_id in cd.drain():
            try:
                await asyncio.to_thread(app.state.shared.drop_presence, agent_id, node)
            except Exception as e:  # Redis away: the presence expires by itself (TTL)
                log.warning("draining: presence of %s not withdrawn: %s", agent_id, e)
    log.warning("SIGTERM: draining (no new calls; waiting up to %.0f s for %s)", timeout_s, _said(pending(app)))
    while any(pending(app).values()) and loop.time() - t0 < timeout_s:
        await asyncio.sleep(POLL_S)
    left = pending(app)
    if not any(left.values()):
        log.warning("drained in %.1f s: every call has ended", loop.time() - t0)
        return
    desk = getattr(calls, "desk", None)
    waiting = [w for w in (desk.queue if desk is not None else []) if not w.node]
    for w in waiting:  # their own call books the callback ticket and reads it back (the queue time-out's)
        desk.leave(w)
    ids = {w.call_id for w in waiting}
    end = loop.time() + CALLBACK_GRACE_S
    while ids & set(getattr(calls, "sessions", {})) and loop.time() < end:
        await asyncio.sleep(POLL_S)
    log.warning("drain timeout after %.0f s: %d waiting caller(s) offered a callback; stopping with %s",
                loop.time() - t0, len(waiting), _said(pending(app)))


def _said(p: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in p.items()) or "nothing"


class DrainingServer(uvicorn.Server):
    """uvicorn's server whose first SIGTERM awaits ``app.state.drain()`` before the usual shutdown."""

    def __init__(self, config: uvicorn.Config, app: Any) -> None:
        super().__init__(config)
        self.app = app
        self._drain_started = False
        self._task: asyncio.Task | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        hook: Callable[[], Awaitable[None]] | None = getattr(self.app.state, "drain", None)
        loop: asyncio.AbstractEventLoop | None = getattr(self.app.state, "loop", None)
        if sig != signal.SIGTERM or hook is None or loop is None or self.should_exit or self._drain_started:
            super().handle_exit(sig, frame)
            return
        self._drain_started = True
        loop.call_soon_threadsafe(self._start, hook)  # in a signal handler: only hand it to the loop

    def _start(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._task = asyncio.ensure_future(self._drain(hook))

    async def _drain(self, hook: Callable[[], Awaitable[None]]) -> None:
        try:
            await hook()
        except Exception:
            log.exception("draining failed; stopping now")
        finally:
            super().handle_exit(signal.SIGTERM, None)


def serve(app: Any, **kwargs: Any) -> None:
    """``uvicorn.run(app, **kwargs)`` (one process, no reload) with :class:`DrainingServer`."""
    config = uvicorn.Config(app, **kwargs)
    server = DrainingServer(config, app)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE

"""Agents of every node are offered the callers of every node (Redis as the shared queue, presence and claims).

* Each node mirrors its waiting callers into the shared queue (:mod:`ivr.cluster.desk_share`). Every round each
  node adds the other nodes' callers to its own desk as *proxies* (``Waiting.node`` = the node holding the call,
  ordered by priority, then arrival across nodes), so its own agents are offered them by the usual rules; a proxy
  goes when its caller leaves the shared queue (answered anywhere, hung up).
* One offer per caller at a time, cluster-wide: a desk claims ``offer:<call_id>`` (atomic, expiring after the
  ring timeout plus a margin) before it offers a caller, its own or a proxy. A withdrawn offer (declined, ring
  timeout) releases the claim and the next free agent of any node is offered the caller at the next round; an
  accepted one holds it until the caller has left the queue everywhere.
* Accepting a proxy: the agent's node (A) sends the browser's WebRTC offer (or the agent's desk phone address) to
  the node holding the call (B), ``POST /api/cluster/agent/accept``, signed with the shared ``secret_key``. B
  checks that A holds the claim, makes the agent's leg (answers the browser, or dials the desk phone through its
  own SIP gateway) and accepts on its desk; the browser's audio then flows straight to B (B's ICE candidates).
  The bridge, the record and the transcript are B's.
* B's desk events for that agent (connected, transcript, hold, caller_hangup, call_ended, offline) go to A over
  the ``desk:<A>`` channel and into the agent's event stream; hang-up, hold and card requests are forwarded to B
  (:mod:`ivr.cluster.web`); the wrap-up is filed through B (``POST /api/cluster/agent/wrapup``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from types import SimpleNamespace
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ivr.channels.agent_leg import LIVE_CHANNELS
from ivr.cluster.shared import SharedState
from ivr.services.agents.desk import AgentDesk, AgentState, DeskError, Waiting

log = logging.getLogger(__name__)
router = APIRouter()
CLAIM_MARGIN_S = 5.0  # a claim outlives the ring timeout by this (the offering node's own timer withdraws first)
TAKEN_S = 10.0  # an accepted caller stays claimed this long: until every node has seen it leave the queue
AUTH = "X-Ivr-Cluster-Auth"
REDIS_BACKOFF_S = 5.0  # after a failed claim, offer only this node's own callers for this long
FREE = ("offline", "away")


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class ClusterDesk:
    """This node's desk in the cluster: the hooks of :class:`AgentDesk`, the proxies, the relayed events."""

    def __init__(self, state: SharedState, node: str, secret: str, db_url: str) -> None:
        self.state, self.node, self.secret, self.db_url = state, node, secret, db_url
        self.desk: AgentDesk | None = None
        self.claims: dict[str, str] = {}  # call id -> the claim value held for it through this node
        self.remote_agents: dict[str, str] = {}  # agents of other nodes on this node's calls -> their node
        self.remote_calls: dict[str, tuple[str, str]] = {}  # this node's agents on others' calls: (call, node)
        self.taken: dict[str, str] = {}  # this node's callers accepted: call id -> the claim held for them
        self.views: dict[str, dict[str, Any]] = {}  # those calls' card and transcript, until the wrap-up
        self.others_staffed = 0
        self._listener: asyncio.Task | None = None
        self._down_until = 0.0
        self._accepting: set[str] = set()  # proxies whose accept is on its way to their node
        self.draining = False  # SIGTERM (ivr.cluster.drain): this node's agents are offered no caller

    # --- hooks of the desk ----------------------------------------------------------------------------------
    def attach(self, desk: AgentDesk) -> None:
        self.desk = desk
        desk.claim, desk.release, desk.relay = self._claim, self._release, self._relay
        desk.remote_staffed = lambda: self.others_staffed
        self._listener = asyncio.get_running_loop().create_task(self._listen())

    def detach(self) -> None:
        if self._listener is not None:
            self._listener.cancel()

    def _ttl(self) -> float:
        assert self.desk is not None
        return self.desk.options.ring_timeout_s + CLAIM_MARGIN_S

    def _claim(self, w: Waiting, agent: AgentState) -> bool:
        if self.draining:  # this node's callers go to the other nodes' agents (the shared queue)
            return False
        value = f"{self.node}:{agent.agent_id}"
        if time.monotonic() < self._down_until:  # Redis away: not a blocking try per offer
            return not w.node
        try:
            ok = self.state.claim(f"offer:{w.call_id}", value, self._ttl())
        except Exception as e:  # Redis away: this node's own callers still reach its agents
            log.warning("cannot claim call %s (shared state away for %.0f s): %s", w.call_id, REDIS_BACKOFF_S, e)
            self._down_until = time.monotonic() + REDIS_BACKOFF_S
            return not w.node
        if ok:
            self.claims[w.call_id] = value
        return ok

    def _release(self, w: Waiting, taken: bool) -> None:
        value = self.claims.pop(w.call_id, None)
        if value is None:
            return
        try:
            if taken:
                self.state.reclaim(f"offer:{w.call_id}", value, TAKEN_S)
                if not w.node:
                    self.taken[w.call_id] = value
                    while len(self.taken) > 1000:
                        self.taken.pop(next(iter(self.taken)))
            else:
                self.state.unclaim(f"offer:{w.call_id}", value)
        except Exception as e:  # expires by itself
            log.warning("cannot release call %s: %s", w.call_id, e)

    def _relay(self, agent_id: str, event: dict[str, Any]) -> bool:
        node = self.remote_agents.get(agent_id)
        if node is None:
            return False
        with contextlib.suppress(Exception):  # Redis away: the agent's desktop misses it, the call goes on
            self.state.publish(f"desk:{node}", {"agent_id": agent_id, "event": event})
        if event.get("type") == "presence" and event.get("presence") in ("wrap_up", "offline", "available"):
            with contextlib.suppress(RuntimeError):  # not on the event loop: forgotten at the next event
                asyncio.get_running_loop().call_soon(self._forget, agent_id)
        return True

    def _forget(self, agent_id: str) -> None:
        """The agent of another node is done with this node's call."""
        assert self.desk is not None
        st = self.desk.agents.get(agent_id)
        if st is not None and st.presence not in ("busy", "ringing"):
            self.desk.agents.pop(agent_id, None)
            self.remote_agents.pop(agent_id, None)

    async def _listen(self) -> None:
        """Events of other nodes' desks for this node's agents (their calls are there)."""
        while True:
            try:
                async for msg in self.state.subscribe(f"desk:{self.node}"):
                    self._on_remote(str(msg.get("agent_id", "")), msg.get("event") or {})
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("desk events of other nodes: %s", e)
            await asyncio.sleep(1.0)

    def _on_remote(self, agent_id: str, ev: dict[str, Any]) -> None:
        desk = self.desk
        call = self.remote_calls.get(agent_id)
        if desk is None or call is None or ev.get("call_id", call[0]) not in (call[0], ""):
            return
        kind = ev.get("type")
        if kind == "presence":
            if ev.get("presence") == "offline":  # the agent's leg died: B requeued the caller
                self.remote_calls.pop(agent_id, None)
                self.views.pop(call[0], None)
                desk.agent_dropped(agent_id, call[0])
        elif kind == "call_ended":
            desk.call_ended(agent_id, call[0])
            if call[0] in self.views:
                self.views[call[0]]["live"] = False
        else:
            if kind == "transcript" and call[0] in self.views:
                self.views[call[0]]["transcript"].append({k: v for k, v in ev.items() if k not in ("type", "call_id")})
            desk.publish(agent_id, ev)

    def drain(self) -> list[str]:
        """The node is stopping: its agents take no new caller; returns their ids (their presence is withdrawn)."""
        self.draining = True
        return [a for a in (self.desk.agents if self.desk is not None else {}) if a not in self.remote_agents]

    # --- each round -------------------------------------------------------------------------------------
    async def round(self) -> None:
        """Proxies follow the shared queue; offers withdrawn elsewhere are made again here."""
        desk = self.desk
        if desk is None:
            return

        def read() -> tuple[list[tuple[str, dict[str, Any]]], dict[str, dict[str, str]], dict[str, str]]:
            return self.state.queue(), self.state.presence(), self.state.nodes()

        queue, presence, nodes = await asyncio.to_thread(read)
        self.others_staffed = sum(1 for a, p in presence.items() if p.get("node") != self.node
                                  and p.get("presence") not in FREE and a not in self.remote_agents)
        remote = {t: d for t, d in queue if d.get("node") and d["node"] != self.node and d["node"] in nodes
                  and (d.get("handoff") or {}).get("channel") not in LIVE_CHANNELS}  # chats: their node's agents
        for w in [w for w in desk.queue if w.node and w.call_id not in remote and w.call_id not in self._accepting]:
            desk.leave(w)  # answered elsewhere or hung up: an offer of it here is withdrawn
        again = [(w.call_id, self.taken.pop(w.call_id)) for w in desk.queue
                 if not w.node and w.requeued and w.call_id in self.taken]
        for call_id, value in again:  # back in the queue (the agent's leg dropped): offer it again now
            await asyncio.to_thread(self.state.unclaim, f"offer:{call_id}", value)
        have = {w.call_id for w in desk.queue}
        new = [self._proxy(t, d) for t, d in remote.items() if t not in have]
        desk.queue.extend(new)
        desk.dispatch()
        if new:
            desk._broadcast_queue()

    def _proxy(self, ticket: str, d: dict[str, Any]) -> Waiting:
        assert self.desk is not None
        arrived = float(d.get("arrived") or time.time())
        handoff = d.get("handoff") or {"summary": d.get("summary", ""), "reason": d.get("reason", ""),
                                       "caller": d.get("caller", "")}
        return Waiting(ticket, d.get("skill") or "general", int(d.get("priority") or 0), dict(handoff),
                       enqueued_at=self.desk.clock() - max(0.0, time.time() - arrived), seq=next(self.desk._seq),
                       vip=bool(d.get("vip")), language=str(d.get("language") or ""), arrived=arrived,
                       node=str(d["node"]))

    # --- the agent here takes a call held elsewhere ------------------------------------------------------
    async def _post(self, node: str, path: str, payload: dict[str, Any]) -> httpx.Response | None:
        url = (await asyncio.to_thread(self.state.nodes)).get(node)
        if url is None:
            return None
        body = json.dumps(payload, ensure_ascii=False).encode()
        assert self.desk is not None  # a desk phone rings up to the ring timeout
        async with httpx.AsyncClient(timeout=self.desk.options.ring_timeout_s + 15) as c:
            return await c.post(url + path, content=body, headers={"Content-Type": "application/json",
                                                                   AUTH: sign(self.secret, body)})

    async def accept_remote(self, acc: Any, offer_id: str, w: Waiting, body: dict[str, Any]) -> Response:
        """``POST /api/agent/offers/{id}/accept`` for a proxy: the leg is made by the node holding the call."""
        desk = self.desk
        assert desk is not None
        via = body.get("via", "webrtc")
        if via == "sip" and not acc.sip_uri:
            return _error(409, "no desk phone is set for you (ivr agents phone NAME sip:...)")
        desk._cancel_ring(offer_id)  # no time-out while the other node answers
        leg = {"via": "sip", "sip_uri": acc.sip_uri} if via == "sip" else {"sdp": body["sdp"], "type": body["type"]}
        payload = {"call_id": w.call_id, "claim": self.claims.get(w.call_id, ""), "node": self.node, **leg,
                   "agent": {"agent_id": acc.agent_id, "username": acc.username,
                             "display_name": acc.display_name, "role": acc.role, "skills": list(acc.skills)}}
        self._accepting.add(w.call_id)
        try:
            r = await self._post(w.node, "/api/cluster/agent/accept", payload)
        except httpx.HTTPError as e:
            log.warning("call %s: node %s did not answer the accept: %s", w.call_id, w.node, e)
            r = None
        finally:
            self._accepting.discard(w.call_id)
        if r is not None and r.status_code == 502 and via == "sip":
            with contextlib.suppress(DeskError):  # the desk phone did not answer: away, the caller goes on
                desk.decline(acc.agent_id, offer_id, reason="phone_failed")
        if r is None or r.status_code != 200:
            if w in desk.queue:
                desk.leave(w)  # the agent is free again; the caller comes back next round if still waiting
            if r is None:
                return _error(502, f"the node holding call {w.call_id} did not answer")
            return Response(r.content, status_code=r.status_code, media_type="application/json")
        self.remote_calls[acc.agent_id] = (w.call_id, w.node)
        self.views[w.call_id] = {"call_id": w.call_id, "live": True, "context": w.handoff, "transcript": []}
        with contextlib.suppress(DeskError):  # the proxy went meanwhile: the other node has the agent anyway
            desk.accept(acc.agent_id, offer_id, None)
        st = desk.agents.get(acc.agent_id)
        if st is not None and st.presence != "busy":
            st.call_id, st.offer_id = w.call_id, ""
            desk._set(st, "busy")
        log.info("call %s (node %s) accepted by agent %s of this node", w.call_id, w.node, acc.username)
        return JSONResponse(r.json())

    def call_view(self, call_id: str) -> dict[str, Any] | None:
        """The card and live transcript of another node's call this node's agent has (a reloaded desktop)."""
        view = self.views.get(call_id)
        return {**view, "transcript": list(view["transcript"])} if view is not None else None

    def holds(self, agent_id: str, call_id: str) -> bool:
        """Whether ``call_id`` is another node's call this node's agent had."""
        return self.remote_calls.get(agent_id, ("", ""))[0] == call_id

    async def wrapup(self, acc: Any, call_id: str, disposition: str, note: str) -> Response:
        """The wrap-up of another node's call: filed by that node (its live record), else in the database."""
        assert self.desk is not None
        node = self.remote_calls[acc.agent_id][1]
        payload = {"call_id": call_id, "agent_id": acc.agent_id, "disposition": disposition, "note": note}
        try:
            r = await self._post(node, "/api/cluster/agent/wrapup", payload)
        except httpx.HTTPError:
            r = None
        if r is None:  # that node is gone: the shared database still has the record
            from ivr.services.agents.wrapup import save_wrapup

            try:
                ok = await asyncio.to_thread(save_wrapup, self.db_url, call_id, acc.agent_id, disposition, note)
            except ValueError as e:
                return _error(400, str(e))
            if not ok:
                return _error(404, f"no call {call_id} of yours")
        elif r.status_code != 204:
            return Response(r.content, status_code=r.status_code, media_type="application/json")
        self.remote_calls.pop(acc.agent_id, None)
        self.views.pop(call_id, None)
        self.desk.wrapped_up(acc.agent_id)
        return Response(status_code=204)


def _checked(request: Request, body: bytes) -> dict[str, Any] | None:
    cd: ClusterDesk | None = getattr(request.app.state, "cluster_desk", None)
    if cd is None or cd.desk is None or not hmac.compare_digest(request.headers.get(AUTH, ""), sign(cd.secret, body)):
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@router.post("/api/cluster/agent/accept", include_in_schema=False)
async def serve_accept(request: Request) -> Response:
    """Another node's agent takes a caller waiting here (see the module docstring)."""
    from ivr.telephony.webrtc import OfferError, WebRtcPort, ice_hosts_for

    d = _checked(request, await request.body())
    if d is None:
        return _error(403, "not signed by a node of this cluster")
    cd: ClusterDesk = request.app.state.cluster_desk
    desk = cd.desk
    assert desk is not None
    call_id, claim, agent = str(d["call_id"]), str(d["claim"]), d["agent"]

    def waiting() -> Waiting | None:
        return next((x for x in desk.queue if x.call_id == call_id and not x.node and not x.offer_id), None)

    if waiting() is None or not claim or not await asyncio.to_thread(cd.state.reclaim, f"offer:{call_id}", claim,
                                                                      cd._ttl()):
        return _error(409, "this call is no longer offered to you")
    settings = request.app.state.settings
    if d.get("via") == "sip":  # the agent's desk phone, dialled by this node's SIP gateway
        gateway = getattr(request.app.state, "sip", None)
        if gateway is None:
            return _error(503, "SIP is not enabled on the node holding this call")
        try:
            leg = await gateway.dial(str(d["sip_uri"]), caller="ivr", timeout=desk.options.ring_timeout_s)
        except (RuntimeError, TimeoutError, OSError) as e:
            log.warning("desk phone of %s did not answer: %s", agent["username"], e)
            return _error(502, f"your desk phone did not answer: {e or type(e).__name__}")
        answer: dict[str, Any] = {"via": "sip"}
    else:
        try:
            leg, answer = await WebRtcPort.from_offer(
                d["sdp"], d["type"], call_id=f"{call_id}-agent", language=settings.language,
                ice_hosts=ice_hosts_for(settings.host, settings.public_ip), extra={"agent_id": agent["agent_id"]},
                settings=settings)
        except OfferError as e:
            return _error(e.status, str(e))
    w = waiting()
    if w is None:
        await (leg.hangup("offer_gone") if d.get("via") == "sip" else leg.close())
        return _error(409, "this call is no longer offered to you")
    st = desk.sign_in(SimpleNamespace(agent_id=agent["agent_id"], username=agent["username"],
                                      display_name=agent["display_name"], role=agent["role"],
                                      skills=tuple(agent["skills"])))
    cd.remote_agents[st.agent_id] = str(d["node"])
    cd.claims[call_id] = claim
    w.offer_id, w.offered_to = "of_" + secrets.token_hex(6), st.agent_id
    st.offer_id, st.call_id = w.offer_id, call_id
    desk.accept(st.agent_id, w.offer_id, leg)
    log.info("call %s accepted by agent %s of node %s", call_id, st.username, d["node"])
    return JSONResponse({**answer, "call_id": call_id})


@router.post("/api/cluster/agent/wrapup", include_in_schema=False)
async def serve_wrapup(request: Request) -> Response:
    """The wrap-up of a call held here, filed by another node's agent: on the live record and in the database."""
    from ivr.services.agents.wrapup import save_wrapup

    d = _checked(request, await request.body())
    if d is None:
        return _error(403, "not signed by a node of this cluster")
    calls = request.app.state.calls
    call_id = str(d["call_id"])
    session = calls.sessions.get(call_id)
    for rec in (session.record if session is not None else None, calls.records.get(call_id)):
        if rec is not None:
            rec.disposition, rec.agent_note = d["disposition"], d.get("note", "")
    try:
        ok = await asyncio.to_thread(save_wrapup, request.app.state.settings.database_url, call_id,
                                     str(d["agent_id"]), str(d["disposition"]), str(d.get("note", "")))
    except ValueError as e:
        return _error(400, str(e))
    if not ok and session is None:
        return _error(404, f"no call {call_id} of yours")
    return Response(status_code=204)

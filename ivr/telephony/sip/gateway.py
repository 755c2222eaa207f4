"""The SIP gateway: answers INVITEs on UDP and TCP and hands each answered call to ``on_call`` as a CallPort."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable

from aiortp.port_allocator import PortAllocator
from aiosipua import SipDigestAuth, SipRequest
from aiosipua.incoming_call import IncomingCall
from aiosipua.registration import Registration
from aiosipua.uac import SipUAC

from ivr.call.ports import CallInfo
from ivr.config import Settings
from ivr.privacy import mask_phone
from ivr.telephony.adapters import aiosipua_private as sip_private
from ivr.telephony.rtp.stream import RtpStream
from ivr.telephony.sip.auth import AccessPolicy, parse_networks
from ivr.telephony.sip.call import PORT_RATE, SipCall
from ivr.telephony.sip.dtmf import parse_info_dtmf
from ivr.telephony.sip.sdp import MediaOffer, SdpError, build_answer, build_offer, parse_offer
from ivr.telephony.sip.security import caller_identity, check_not_own_port
from ivr.telephony.sip.transport import GuardedTcpTransport, GuardedUdpTransport
from ivr.telephony.sip.ua import GatewayUAS, Refusal

log = logging.getLogger(__name__)

USER_AGENT = "ivr-sip-gateway"
STOP_GRACE_S = 3.0


class SipGateway:
    """Listens for SIP on ``settings.host``:``settings.sip_port`` (UDP and TCP; port 0 = ephemeral).

    ``capacity()`` returning False makes new INVITEs get 503 with Retry-After; without it the gateway
    admits up to ``settings.max_calls`` concurrent calls (ringing ones included).

    ``reserve()`` (e.g. ``CallManager.reserve``) is asked for a slot once an INVITE has passed every other check;
    raising (``CallRefused``) answers 503 + Retry-After. The slot is then handed to ``on_call(port, slot)`` or
    released (``slot.release()``) when the call is never answered (CANCEL, error, shutdown while ringing).
    Without ``reserve``, ``on_call(port)`` gets the port alone.

    The 200 OK carries ``X-Ivr-Call-Id: <call_id>`` (the id of the call record, ``GET /api/calls/{id}``).
    ``port.info.caller_id_trusted`` is True only for INVITEs from ``sip_trusted_peers`` (docs/sip.md, Security).
    """

    def __init__(self, settings: Settings, on_call: Callable[..., Awaitable[object]], *,
                 capacity: Callable[[], bool] | None = None, reserve: Callable[[], object] | None = None) -> None:
        self.settings = settings
        self.on_call = on_call
        self.capacity = capacity
        self.reserve = reserve
        self._slots: dict[str, object] = {}  # SIP Call-ID -> reserved slot, until the call handler takes it
        self.port = settings.sip_port
        self.policy = AccessPolicy(parse_networks(settings.sip_allow_from), settings.sip_auth_user,
                                   settings.sip_auth_password)
        self.trusted_peers = parse_networks(settings.sip_trusted_peers)
        self._streams: weakref.WeakSet[RtpStream] = weakref.WeakSet()  # our RTP streams (own ports for 488)
        low, high = settings.rtp_port_min, settings.rtp_port_max  # RTP/RTCP pairs inside the firewall range
        self._rtp_ports = PortAllocator((low, high)) if low and high else None
        self.calls: dict[str, SipCall] = {}  # answered calls by SIP Call-ID
        self._ringing: dict[str, asyncio.Task] = {}
        self._tasks: set[asyncio.Task] = set()
        self._uas: list[GatewayUAS] = []
        self._registration: Registration | None = None
        self._stopping = False
        self.counters = {"answered": 0, "refused": 0, "cancelled": 0, "ended": 0}

    # --- lifecycle -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind UDP (then TCP on the same port number) and start answering."""
        host = self._bind_host()
        self.advertised = (self._advertised_ip(), self.settings.sip_port)
        udp = GuardedUdpTransport(local_addr=(host, self.settings.sip_port))
        await self._add_ua(udp)
        self.port = udp.local_addr[1]
        self.advertised = (self.advertised[0], self.port)
        for ua in self._uas:
            ua.advertised_addr = ua.uac.advertised_addr = self.advertised
        tcp: GuardedTcpTransport | None = GuardedTcpTransport(local_addr=(host, self.port))
        try:
            await self._add_ua(tcp)
        except OSError as e:  # the TCP port is taken: UDP alone still serves PBXs and trunks
            log.warning("SIP over TCP unavailable on port %d: %s", self.port, e)
            tcp = None
        if self.settings.sip_register_uri:
            self._start_registration()
        log.info("SIP gateway listening on %s:%d (udp%s)", host, self.port, "+tcp" if tcp else "")

    async def _add_ua(self, transport) -> None:
        ua = GatewayUAS(transport, admit=self._admit, on_info=self._on_info, user_agent=USER_AGENT,
                        advertised_addr=self.advertised, session_expires=self.settings.sip_session_expires or None)
        ua.uac = SipUAC(transport, advertised_addr=self.advertised)
        ua.on_invite = lambda call: self._spawn(self._answer(ua, call), self._ringing, call.call_id)
        ua.on_cancel = self._on_cancel
        ua.on_bye = lambda call, _req: self._spawn(self._ended(call.call_id, "caller", "caller_hangup"))
        ua.on_ack = lambda call: self.calls[call.call_id].ack() if call.call_id in self.calls else None
        ua.on_ack_timeout = lambda call: self._spawn(self._ended(call.call_id, "system", "no_ack"))
        ua.on_session_expired = lambda call: self._spawn(self._ended(call.call_id, "system", "session_expired"))
        ua.on_reinvite = lambda call: self._spawn(self._reinvite(ua, call))
        ua.on_transfer_progress = self._on_transfer_progress
        ua.on_refused_after_admit = self._release
        await ua.start()
        self._uas.append(ua)

    def stop_accepting(self) -> None:
        """New INVITEs and health OPTIONS get 503 from now on (a SIP proxy's prober takes the node out);
        active calls go on (their session can still say goodbye)."""
        self._stopping = True
        for ua in self._uas:
            ua.draining = True

    async def stop(self) -> None:
        """Refuse new calls, BYE active ones, wait briefly for their handlers, then close the sockets."""
        self._stopping = True
        if self._registration is not None:
            with contextlib.suppress(Exception):
                self._registration.unregister()
        for task in list(self._ringing.values()):
            task.cancel()
        for call in list(self.calls.values()):
            await call.hangup("gateway stopping")
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=STOP_GRACE_S)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.sleep(0.1)  # let BYE retransmission tasks send once more
        for ua in self._uas:
            await ua.stop()
        self._uas.clear()
        for call_id in list(self._slots):
            self._release(call_id)

    def status(self) -> dict:
        """For /health and metrics."""
        return {"port": self.port, "accepting": not self._stopping, "open_calls": self.open_calls,
                "transports": [("tcp" if getattr(ua.transport, "reliable", False) else "udp") for ua in self._uas],
                **self.counters}

    @property
    def open_calls(self) -> int:
        """Answered plus ringing calls (for leak checks and metrics)."""
        return len(self.calls) + len(self._ringing)

    # --- admission -----------------------------------------------------------------------------------------
    def _admit(self, request: SipRequest, addr: tuple[str, int]) -> None:
        if not self.policy.source_allowed(addr[0]):
            self.counters["refused"] += 1
            raise Refusal(403, "Forbidden")
        if self.policy.digest_enabled:
            verdict = self.policy.verify("INVITE", request.get_header("authorization"))
            if verdict != "ok":
                self.counters["refused"] += 1
                if verdict == "bad":
                    raise Refusal(403, "Forbidden")
                raise Refusal(401, "Unauthorized", {"WWW-Authenticate": self.policy.challenge(verdict == "stale")})
        if self._stopping or not self._has_room():
            self.counters["refused"] += 1
            raise Refusal(503, "Service Unavailable", {"Retry-After": str(self.settings.sip_retry_after_s)})
        ctype = (request.content_type or "").split(";")[0].strip().lower()
        if request.body and ctype != "application/sdp":
            raise Refusal(415, "Unsupported Media Type", {"Accept": "application/sdp"})
        if not request.body:
            raise Refusal(488, "Not Acceptable Here", {"Warning": '399 ivr "an SDP offer is required"'})
        try:
            self._check_target(parse_offer(request.text))
        except SdpError as e:
            raise Refusal(e.status, "Bad Request" if e.status == 400 else "Not Acceptable Here",
                          {"Warning": f'399 ivr "{e}"'}) from None
        if self.reserve is not None:  # last: a slot is only taken for an INVITE we will answer
            try:
                slot = self.reserve()
            except Exception as e:  # CallRefused: busy or shutting down
                self.counters["refused"] += 1
                log.info("INVITE refused: %s", e)
                raise Refusal(503, "Service Unavailable", {"Retry-After": str(self.settings.sip_retry_after_s)}) \
                    from None
            old = self._slots.pop(request.call_id or "", None)
            if old is not None:
                old.release()  # type: ignore[attr-defined]
            self._slots[request.call_id or ""] = slot

    def _release(self, call_id: str) -> None:
        slot = self._slots.pop(call_id, None)
        if slot is not None:
            with contextlib.suppress(Exception):
                slot.release()  # type: ignore[attr-defined]

    def _has_room(self) -> bool:
        if self.capacity is not None:
            return bool(self.capacity())
        return self.open_calls < self.settings.max_calls

    # --- call flow -----------------------------------------------------------------------------------------
    async def _answer(self, ua: GatewayUAS, inv: IncomingCall) -> None:
        call_id = inv.call_id
        stream = None
        record_id = f"sip-{uuid.uuid4().hex[:12]}"
        sip_private.add_2xx_header(inv, "X-Ivr-Call-Id", record_id)
        try:
            offer = parse_offer(inv.invite.text)
            stream = await self._open_stream(offer.remote, offer.codec, offer.dtmf_pt,
                                          peer_ips=(inv.source_addr[0],))
            stream.set_hold(True)  # nothing is sent before the caller's ACK (SipCall.hold_until_ack)
            answer = build_answer(offer, self.advertised[0], stream.local_port, stream.rtcp_port, version=1)
            inv.ringing()
            if self.settings.sip_ring_ms:
                await asyncio.sleep(self.settings.sip_ring_ms / 1000)
            if inv.dialog.state.value == "terminated" or not sip_private.has_call(ua, call_id):
                raise asyncio.CancelledError  # cancelled while ringing
            inv.accept(answer)
        except asyncio.CancelledError:
            if stream is not None:
                await stream.close()
            if not sip_private.answered(inv) and inv.dialog.state.value != "terminated":
                inv.reject(503 if self._stopping else 487)
                sip_private.forget_call(ua, call_id)
            self._release(call_id)
            return
        except Exception:
            log.exception("could not answer call")
            if stream is not None:
                await stream.close()
            if not sip_private.answered(inv):
                inv.reject(500, "Server Internal Error")
                sip_private.forget_call(ua, call_id)
            self._release(call_id)
            return
        finally:
            self._ringing.pop(call_id, None)
        caller, trusted = caller_identity(inv.invite, inv.source_addr[0], self.trusted_peers)
        info = CallInfo(
            call_id=record_id, channel="sip", caller_id=caller, caller_id_trusted=trusted,
            sample_rate=PORT_RATE, language=self.settings.language,
            extra={"sip_call_id": call_id, "codec": offer.codec, "peer": f"{inv.source_addr[0]}:{inv.source_addr[1]}",
                   "transport": "tcp" if getattr(ua.transport, "reliable", False) else "udp"},
        )
        port = SipCall(info, inv, stream, ua, on_closed=self._forget)
        port.answer_version = 1
        port.hold_until_ack(offer.hold)
        self.calls[call_id] = port
        self.counters["answered"] += 1
        log.info("answered SIP call %s from %s%s (%s)", info.call_id, mask_phone(caller),
                 " (trusted peer)" if trusted else "", offer.codec)
        self._spawn(self._run(port, self._slots.pop(call_id, None)))

    async def _run(self, port: SipCall, slot: object | None = None) -> None:
        try:
            await port.wait_ack()  # the bot speaks to whoever read our 200 OK, not to a forged Via's c=
            if self.reserve is not None:
                await self.on_call(port, slot)
            else:
                await self.on_call(port)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call handler failed for %s", port.info.call_id)
        finally:
            await port.hangup("call handler finished")

    async def _forget(self, port: SipCall) -> None:
        if self.calls.pop(port.info.extra["sip_call_id"], None) is not None:
            self.counters["ended"] += 1

    async def _ended(self, call_id: str, by: str, reason: str) -> None:
        task = self._ringing.get(call_id)
        if task is not None:
            task.cancel()
        port = self.calls.get(call_id)
        if port is not None:  # no ACK for our 2xx: we end the session with a BYE (RFC 3261 13.3.1.4)
            await (port.no_ack() if reason == "no_ack" else port.remote_hangup(by, reason))

    def _on_cancel(self, request: SipRequest, _addr: tuple[str, int]) -> None:
        task = self._ringing.get(request.call_id or "")
        if task is not None:
            self.counters["cancelled"] += 1
            task.cancel()

    async def _reinvite(self, ua: GatewayUAS, inv: IncomingCall) -> None:
        """Hold/resume, a new peer address, a codec change, or a session refresh."""
        port = self.calls.get(inv.call_id)
        if port is None:
            return
        try:
            offer: MediaOffer | None = parse_offer(inv.invite.text) if inv.invite.body else None
            if offer is not None:
                self._check_target(offer)
        except SdpError as e:
            resp = inv.dialog.create_response(inv.invite, 488, "Not Acceptable Here")
            resp.headers.set_single("Warning", f'399 ivr "{e}"')
            ua.transport.send_reply(resp)
            return
        port.answer_version += 1
        if offer is None:  # refresh without an offer: we offer our current media, the answer comes in ACK
            inv.accept(build_offer(self.advertised[0], port.stream.local_port, port.stream.rtcp_port,
                                   version=port.answer_version))
            return
        if offer.codec != port.stream.codec:  # codec change: a fresh stream in the new codec
            old = port.stream
            port.stream = await self._open_stream(offer.remote, offer.codec, offer.dtmf_pt,
                                               peer_ips=(port.sip.source_addr[0],))
            port.stream.on_pcm, port.stream.on_dtmf = old.on_pcm, old.on_dtmf
            await old.close()
            port.info.extra["codec"] = offer.codec
        else:
            port.stream.update_remote(offer.remote) if offer.remote[0] not in ("0.0.0.0", "::") else None
        port.stream.set_hold(offer.hold)
        port.info.extra["on_hold"] = offer.hold
        log.info("re-INVITE on %s: %s", port.info.call_id, "hold" if offer.hold else "active")
        inv.accept(build_answer(offer, self.advertised[0], port.stream.local_port, port.stream.rtcp_port,
                                version=port.answer_version))

    def _on_info(self, inv: IncomingCall, request: SipRequest) -> tuple[int, str]:
        digit = parse_info_dtmf(request.content_type, request.text)
        if digit is None:
            return 415, "Unsupported Media Type"
        port = self.calls.get(inv.call_id)
        if port is not None and digit:
            port.push_dtmf(digit)
        return 200, "OK"

    def _on_transfer_progress(self, call_id: str, status: int, _reason: str) -> None:
        port = self.calls.get(call_id)
        if port is not None:
            port.transfer_progress(status)

    # --- outbound leg (warm transfer bridges it with the caller) -----------------------------------------------
    async def dial(self, target: str, *, caller: str = "ivr", timeout: float = 30.0,
                   codecs: tuple[str, ...] = ("PCMU", "PCMA")) -> SipCall:
        """Call ``target`` (a SIP URI with host and port) and return the answered leg as a CallPort.

        ``codecs``: offered in this order of preference. ``port.info.extra["remote_call_id"]`` is the far
        end's ``X-Ivr-Call-Id`` when it is an ivr gateway. Raises RuntimeError with the SIP status when
        refused, TimeoutError when nobody answers."""
        from aiosipua.headers import parse_uri

        ua = self._uas[0]
        uri = parse_uri(target.strip("<>"))
        remote = (uri.host, uri.port or 5060)
        stream = await self._open_stream(("0.0.0.0", 9), codecs[0])
        stream.set_hold(True)  # nothing to send until the answer tells us where
        offer_sdp = build_offer(self.advertised[0], stream.local_port, stream.rtcp_port, codecs=codecs)
        out = ua.uac.send_invite(f"sip:{caller}@{self.advertised[0]}:{self.port}", target.strip("<>"), remote,
                                 sdp_offer=offer_sdp, user_agent=USER_AGENT)
        try:
            await out.wait_answered(timeout)
            answer = parse_offer(_sdp_text(out.sdp_answer))
            self._check_target(answer)
        except BaseException:
            await stream.close()
            if out.dialog.state.value == "early":
                with contextlib.suppress(Exception):
                    ua.uac.send_cancel(out)
            raise
        if answer.codec != stream.codec:
            await stream.close()
            stream = await self._open_stream(answer.remote, answer.codec, answer.dtmf_pt)
        stream.update_remote(answer.remote, peer_ips=(remote[0],))
        stream.set_hold(answer.hold)
        inv = IncomingCall(dialog=out.dialog, invite=out.invite, transport=ua.transport, source_addr=remote,
                           user_agent=USER_AGENT, advertised_addr=self.advertised)
        ua.uac.remove_call(out.call_id)  # in-dialog requests now go through the UAS's table
        sip_private.adopt_call(ua, inv)
        info = CallInfo(call_id=f"sip-{uuid.uuid4().hex[:12]}", channel="sip", caller_id=uri.user or "",
                        sample_rate=PORT_RATE, language=self.settings.language,
                        extra={"sip_call_id": out.call_id, "codec": answer.codec, "direction": "outbound",
                               "remote_call_id": ua.remote_call_ids.pop(out.call_id, ""),
                               "peer": f"{remote[0]}:{remote[1]}", "transport": "udp"})
        port = SipCall(info, inv, stream, ua, on_closed=self._forget)
        port.answer_version = 1
        self.calls[out.call_id] = port
        return port

    # --- helpers ----------------------------------------------------------------------------------------------
    def _spawn(self, coro, registry: dict | None = None, key: str | None = None) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if registry is not None and key is not None:
            registry[key] = task
        return task

    def _bind_host(self) -> str:
        """``sip_host`` (SIP and its RTP on their own interface), else ``host``."""
        return self.settings.sip_host or self.settings.host

    async def _open_stream(self, remote: tuple[str, int], codec: str, dtmf_pt: int | None = 101,
                           peer_ips: tuple[str, ...] = ()) -> RtpStream:
        stream = await RtpStream.open(self._bind_host(), remote, codec, dtmf_pt, peer_ips=peer_ips,
                                      nat=self.settings.sip_rtp_nat_latch, ports=self._rtp_ports)
        self._streams.add(stream)
        return stream

    def _check_target(self, offer: MediaOffer) -> None:
        """SdpError 488 when the SDP points media at our own SIP port or any open RTP/RTCP port of ours, or at an
        IPv6 address while our RTP sockets are IPv4 (they cannot send there; fuzz finding)."""
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(self._bind_host()).version == 4 and ":" in offer.remote[0]:
                raise SdpError(488, "c= is an IPv6 address; this gateway's media is IPv4")
        own_ips = {self.settings.host, self.settings.sip_host, self.settings.public_ip, getattr(self, "advertised", ("",))[0]}
        ports = {self.port}
        for stream in list(self._streams):
            if not stream.closed:
                ports.update((stream.local_port, stream.rtcp_port))
        check_not_own_port(offer.remote, ports, own_ips)

    def _advertised_ip(self) -> str:
        if self.settings.public_ip:
            return self.settings.public_ip
        host = self._bind_host()
        if host in ("0.0.0.0", "::", ""):
            with contextlib.suppress(OSError):
                return socket.gethostbyname(socket.gethostname())
            return "127.0.0.1"
        return host

    def _start_registration(self) -> None:
        from aiosipua.headers import parse_uri

        aor = self.settings.sip_register_uri
        uri = parse_uri(aor)
        ua = self._uas[0]
        auth = SipDigestAuth(uri.user or "", self.settings.sip_register_password) \
            if self.settings.sip_register_password else None
        reg = Registration(ua.uac, aor, (uri.host, uri.port or 5060), auth=auth, expires=300)
        reg.on_registered = lambda r: log.info("registered to %s for %ss", uri.host, r.granted_expires)
        reg.on_failed = lambda r, status, reason: log.warning("REGISTER to %s failed: %s %s", uri.host, status, reason)
        self._registration = reg
        self.registered_at = time.monotonic()
        reg.register()


def _sdp_text(sdp) -> str:
    from aiosipua import serialize_sdp

    if sdp is None:
        raise RuntimeError("answer carried no SDP")
    return serialize_sdp(sdp)

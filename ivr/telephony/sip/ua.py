"""The gateway's user agent: aiosipua's UAS with the checks and pieces a PBX-facing gateway needs.

Added on top of :class:`aiosipua.SipUAS` (which does dialogs, 100/180/200, 2xx retransmission until ACK,
CANCEL/487, BYE, OPTIONS, REFER/NOTIFY, UPDATE, PRACK and RFC 4028 session timers):

* request checks before any state is made: CSeq well-formed and matching the method (400), unsupported
  ``Require`` (420), Max-Forwards 0 (483), 405 carrying ``Allow``, a new INVITE without Contact (400);
* an admission hook for new INVITEs (allow-list 403, digest 401, capacity 503 + Retry-After, bad SDP 400/488),
  told when aiosipua refuses an admitted INVITE itself (422 below Min-SE) so a reserved slot is freed;
* retransmitted INVITEs recognised instead of being taken for new calls or re-INVITEs;
* SIP INFO (DTMF relay) dispatched instead of 405;
* ``on_ack``: told when an ACK confirms a new call (the gateway sends no media before it);
* our own requests (BYE, REFER) retransmitted over UDP until answered (RFC 3261 Timer E) and their responses
  returned to the caller as futures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiosipua import SipRequest, SipResponse, SipTransport, SipUAS, parse_sdp
from aiosipua.dialog import dialog_matches
from aiosipua.incoming_call import IncomingCall
from aiosipua.transaction import T1, T2
from aiosipua.uas_requests import handle_ack

from ivr.telephony.adapters import aiosipua_private as sip_private

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REFER, NOTIFY, PRACK"
SUPPORTED = {"timer", "100rel", "replaces", "norefersub"}
TIMER_F = 64 * T1


def _sdp_parses(text: str) -> bool:
    try:
        parse_sdp(text)
    except Exception:  # ValueError/IndexError/KeyError on junk
        return False
    return True


class Refusal(Exception):
    """Raised by the admission hook: answer the INVITE with ``status`` and ``headers`` and make no call."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status, self.reason, self.headers = status, reason, headers or {}


class GatewayUAS(SipUAS):
    """SipUAS plus validation, admission, INFO and reliable client requests."""

    def __init__(self, transport: SipTransport, *, admit: Callable[[SipRequest, tuple[str, int]], Any],
                 on_info: Callable[[IncomingCall, SipRequest], tuple[int, str]] | None = None,
                 **kw: Any) -> None:  # noqa: ANN401 — SipUAS keyword options, passed on unchanged
        super().__init__(transport, **kw)
        self._admit = admit
        self._on_info = on_info
        self._handlers["INFO"] = self._handle_info
        self._handlers["ACK"] = self._handle_ack
        self.on_ack: Callable[[IncomingCall], None] | None = None  # an ACK confirmed this call's dialog
        self._pending: dict[tuple[str, str], asyncio.Future[SipResponse]] = {}
        self.remote_call_ids: dict[str, str] = {}  # SIP Call-ID -> X-Ivr-Call-Id of our outbound calls' 200 OK
        self.on_refused_after_admit: Callable[[str], None] | None = None  # Call-ID admitted, then refused
        self.draining = False  # stopping: keep-alive/health OPTIONS get 503 so a proxy's prober stops sending calls

    # --- incoming ------------------------------------------------------------------------------------
    def _on_message(self, msg: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        if isinstance(msg, SipResponse):
            vias = msg.via
            cseq = msg.cseq
            key = (vias[0].branch or "", cseq.method.upper()) if vias and cseq else None
            if cseq and cseq.method.upper() == "INVITE" and 200 <= msg.status_code < 300 \
                    and self.uac is not None and sip_private.has_call(self.uac, msg.call_id or ""):
                rid = msg.get_header("x-ivr-call-id")
                if rid:  # the far end is an ivr gateway: the id of its call record (outbound legs, replay)
                    self.remote_call_ids[msg.call_id or ""] = rid.strip()
            fut = self._pending.get(key) if key else None
            if fut is not None:
                if msg.status_code >= 200 and not fut.done():
                    fut.set_result(msg)
                return
        super()._on_message(msg, addr)

    def _handle_request(self, request: SipRequest, addr: tuple[str, int]) -> None:
        try:
            cseq = request.cseq
        except Exception:
            cseq = None
        if request.headers.get("cseq") and (cseq is None or cseq.method.upper() != request.method.upper()
                                            or not 0 <= cseq.seq < 2**32):  # a 32-bit unsigned number
            self._send_error(request, 400, "Bad CSeq")
            return
        method = request.method.upper()
        if method not in self._handlers and request.headers.get("via"):
            self._send_error(request, 405, "Method Not Allowed", extra_headers={"Allow": ALLOW})
            return
        mf = request.get_header("max-forwards")
        if mf is not None and (not mf.strip().isdigit() or int(mf) == 0) and method not in ("ACK", "CANCEL"):
            self._send_error(request, 483 if mf.strip() == "0" else 400, "Too Many Hops" if mf.strip() == "0"
                             else "Bad Max-Forwards")
            return
        required = {t.strip().lower() for v in request.headers.get("require") for t in v.split(",") if t.strip()}
        unsupported = required - SUPPORTED
        if unsupported and method not in ("ACK", "CANCEL"):
            self._send_error(request, 420, "Bad Extension", extra_headers={"Unsupported": ", ".join(sorted(unsupported))})
            return
        super()._handle_request(request, addr)

    def _handle_invite(self, request: SipRequest, addr: tuple[str, int]) -> None:
        call_id = request.call_id or ""
        existing = self._calls.get(call_id)
        branch = request.via[0].branch if request.via else None
        if existing is not None:
            first = existing.invite
            same_txn = (first.via and first.via[0].branch == branch and first.cseq and request.cseq
                        and first.cseq.seq == request.cseq.seq)
            if same_txn:  # a retransmission: the 2xx retransmission / provisional already covers it
                if not sip_private.answered(existing):
                    existing.trying()
                return
            if existing.dialog.state.value != "confirmed":
                self._send_error(request, 491, "Request Pending")
                return
            if request.body and request.content_type != "application/sdp":
                resp = existing.dialog.create_response(request, 415, "Unsupported Media Type")
                resp.headers.set_single("Accept", "application/sdp")
                self.transport.send_reply(resp)
                return
            if request.body and not _sdp_parses(request.text):
                # aiosipua parses a re-INVITE's SDP before any hook runs and raises on junk: the request would
                # go unanswered (the peer retransmits, then drops the call). Refuse it and keep the call.
                if self._validate_in_dialog(existing.dialog, request):
                    resp = existing.dialog.create_response(request, 400, "Bad Request")
                    resp.headers.set_single("Warning", '399 ivr "malformed SDP"')
                    self.transport.send_reply(resp)
                return
            super()._handle_invite(request, addr)
            return
        if self.uac is not None and sip_private.has_call(self.uac, call_id):
            super()._handle_invite(request, addr)
            return
        # A new call: admission before any dialog state exists.
        if not (request.get_header("contact") or "").strip():  # no remote target: a BYE could never reach it
            self._send_error(request, 400, "Missing Contact")
            return
        try:
            self._admit(request, addr)
        except Refusal as r:
            self._send_error(request, r.status, r.reason, extra_headers=r.headers)
            return
        super()._handle_invite(request, addr)
        if call_id not in self._calls and self.on_refused_after_admit is not None:
            # aiosipua refused it itself (422 Session Interval Too Small): free what admission reserved
            self.on_refused_after_admit(call_id)

    def _handle_ack(self, request: SipRequest, addr: tuple[str, int]) -> None:
        call = self._calls.get(request.call_id or "")
        handle_ack(self, request, addr)  # (aiosipua marks the dialog confirmed when it sends the 2xx already)
        if call is None or getattr(call, "ivr_acked", False) or not dialog_matches(call.dialog, request):
            return
        call.ivr_acked = True  # type: ignore[attr-defined]
        if call.dialog.state.value == "confirmed" and self.on_ack is not None:
            self.on_ack(call)

    def _handle_options(self, request: SipRequest, addr: tuple[str, int]) -> None:
        if self.draining:  # Kamailio's dispatcher marks a destination down on a non-2xx probe reply
            self._send_error(request, 503, "Service Unavailable", extra_headers={"Retry-After": "30"})
            return
        self._send_error(request, 200, "OK", extra_headers={
            "Allow": ALLOW, "Accept": "application/sdp", "Supported": "timer, replaces, norefersub"})

    def _handle_info(self, request: SipRequest, addr: tuple[str, int]) -> None:
        call, dialog = self._find_dialog(request.call_id or "")
        if dialog is None:
            self._send_error(request, 481, "Call/Transaction Does Not Exist")
            return
        if not self._validate_in_dialog(dialog, request):
            return
        status, reason = (200, "OK")
        if call is not None and self._on_info is not None:
            status, reason = self._on_info(call, request)
        resp = dialog.create_response(request, status, reason)
        if status == 415:
            resp.headers.set_single("Accept", "application/dtmf-relay, application/dtmf")
        self.transport.send_reply(resp)

    # --- outgoing requests -----------------------------------------------------------------------------
    async def request(self, req: SipRequest, addr: tuple[str, int], timeout: float = TIMER_F) -> SipResponse | None:
        """Send a non-INVITE request, retransmitting over UDP (Timer E), and return its final response
        (None on timeout, 408-style)."""
        key = (req.via[0].branch or "", req.method.upper())
        fut: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        reliable = getattr(self.transport, "reliable", False)
        interval = T1
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                try:
                    self.transport.send(req, addr)
                except Exception as e:  # closed transport or TCP connection gone
                    log.debug("cannot send %s: %s", req.method, e)
                    return None
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    return None
                wait = remaining if reliable else min(interval, remaining)
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(fut), wait)
                interval = min(interval * 2, T2)
        finally:
            self._pending.pop(key, None)
            if not fut.done():
                fut.cancel()

"""aiosipua internals ivr relies on (known good: aiosipua 0.7.1, pinned in pyproject).

Attribute access goes through the functions here:

* the UAS's and UAC's tables of calls by Call-ID (``_calls``): a call cancelled while ringing, refused or ended by
  our BYE leaves the table; an outbound leg moves to the UAS's table once answered;
* an ``IncomingCall``'s answered flag (``_answered``), its response sender (``_send_response``, wrapped to add a
  header to the 200 OK and its retransmissions) and its 2xx retransmission timer (``_stop_retransmissions``).

``ivr.telephony.sip.ua.GatewayUAS`` and ``ivr.telephony.sip.transport`` also extend aiosipua's protected hooks by
subclassing (``_on_message``, ``_handle_request``, ``_handle_invite``, ``_send_error``, ``_validate_in_dialog``,
``_handlers``; the transports' ``_dispatch``); :func:`check` verifies every one of them exists, so an upgrade that
renames one fails tests/test_adapters.py instead of silently bypassing a guard.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from aiosipua import SipUAC, SipUAS
from aiosipua.incoming_call import IncomingCall

from ivr.telephony.adapters import PrivateApiChanged

KNOWN_GOOD = "==0.7.1"
UAS_HOOKS = ("_on_message", "_handle_request", "_handle_invite", "_send_error", "_validate_in_dialog")
TRANSPORT_HOOKS = ("_dispatch",)
CALL_ATTRS = ("_answered", "_send_response", "_stop_retransmissions")


def has_call(ua: SipUAS | SipUAC, call_id: str) -> bool:
    return call_id in ua._calls


def find_call(ua: SipUAS, call_id: str) -> IncomingCall | None:
    return ua._calls.get(call_id)


def forget_call(ua: SipUAS, call_id: str) -> None:
    """Drop ``call_id`` from the UAS's table (refused, cancelled, or ended by our BYE)."""
    ua._calls.pop(call_id, None)


def adopt_call(ua: SipUAS, call: IncomingCall) -> None:
    """Let the UAS route in-dialog requests of ``call`` (an answered outbound leg) and treat it as answered."""
    call._answered = True
    ua._calls[call.call_id] = call


def answered(call: IncomingCall) -> bool:
    """A final 2xx was sent for this INVITE."""
    return bool(call._answered)


def stop_retransmissions(call: IncomingCall) -> None:
    """Stop resending the 200 OK (we are about to send BYE)."""
    call._stop_retransmissions()


def add_2xx_header(call: IncomingCall, name: str, value: str) -> None:
    """Make the 200 OK of ``call`` (and its retransmissions) carry one more header."""
    send: Callable[..., object] = call._send_response

    def with_header(status: int, reason: str, **kw: object) -> object:
        if 200 <= status < 300:
            extra = kw.get("extra_headers") or {}
            kw["extra_headers"] = {**extra, name: value} if isinstance(extra, dict) else {name: value}
        return send(status, reason, **kw)

    call._send_response = with_header  # type: ignore[method-assign]


def check() -> None:
    """Raise :class:`PrivateApiChanged` if the installed aiosipua lacks what ivr uses."""
    from aiosipua.transport import TcpSipTransport, UdpSipTransport

    missing = [f"SipUAS.{h}" for h in UAS_HOOKS if not callable(getattr(SipUAS, h, None))]
    missing += [f"{t.__name__}.{h}" for t in (UdpSipTransport, TcpSipTransport) for h in TRANSPORT_HOOKS
                if not callable(getattr(t, h, None))]
    missing += [f"IncomingCall.{a}" for a in CALL_ATTRS[1:] if not callable(getattr(IncomingCall, a, None))]
    uas = SipUAS.__new__(SipUAS)
    try:
        SipUAS.__init__(uas, _NullTransport())  # type: ignore[arg-type]
    except Exception as e:  # constructor changed: say so
        raise PrivateApiChanged(f"aiosipua: SipUAS(transport) failed: {e} (known good {KNOWN_GOOD})") from e
    for attr in ("_calls", "_handlers"):
        if not isinstance(getattr(uas, attr, None), dict):
            missing.append(f"SipUAS().{attr} (dict)")
    if "_answered" not in {f.name for f in dataclasses.fields(IncomingCall)}:
        missing.append("IncomingCall._answered (dataclass field)")
    if missing:
        raise PrivateApiChanged(f"aiosipua: no {', '.join(missing)} (known good {KNOWN_GOOD})")


class _NullTransport:
    """Enough of a transport for a SipUAS to be constructed (nothing is sent)."""

    local_addr = ("127.0.0.1", 0)
    on_message = None

    def send(self, *_a: object, **_k: object) -> None:
        return None

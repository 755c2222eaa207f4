"""Dialogs through record-routing proxies (RFC 3261 §12.1.1), which aiosipua 0.7 gets wrong in two places:

* a UAS must copy the INVITE's Record-Route headers into its 18x/2xx responses, or the caller's route set is
  empty and its ACK, BYE and re-INVITEs bypass (or are refused by) the proxy: aiosipua copies none;
* the UAS route set is the Record-Route list in order (the UAC reverses it): aiosipua reverses it on the UAS
  side, which only matters with two or more proxies, but then sends our BYE the wrong way round.

Importing this module fixes both (idempotent); ``ivr.telephony.sip`` imports it. Tested through Kamailio in
tests/test_deploy_kamailio.py.
"""

from __future__ import annotations

import aiosipua.dialog
import aiosipua.uas
from aiosipua import Dialog, SipRequest, SipResponse

_create_response = aiosipua.dialog.Dialog.create_response
_create_dialog = aiosipua.uas.create_dialog_from_request


def _create_response_with_rr(self: Dialog, request: SipRequest, status_code: int, reason_phrase: str = "",
                             **kw: str | None) -> SipResponse:
    resp = _create_response(self, request, status_code, reason_phrase, **kw)
    if 100 < status_code < 300 and getattr(request, "method", "") == "INVITE" and not resp.headers.get("record-route"):
        for rr in request.headers.get("record-route"):
            resp.headers.append("Record-Route", rr)
    return resp


def _create_uas_dialog(request: SipRequest, **kw: str | None) -> Dialog:
    dialog = _create_dialog(request, **kw)
    dialog.route_set = list(request.headers.get("record-route"))  # in order for the UAS (RFC 3261 §12.1.1)
    return dialog


if not getattr(aiosipua.dialog.Dialog.create_response, "_ivr_rr", False):
    _create_response_with_rr._ivr_rr = True  # type: ignore[attr-defined]
    aiosipua.dialog.Dialog.create_response = _create_response_with_rr  # type: ignore[method-assign]
    aiosipua.uas.create_dialog_from_request = _create_uas_dialog

"""Who may act on a call, and what a call's record shows over HTTP.

* The caller's page gets a per-call token (``call_token``) with its answer; keys and hang-up over HTTP
  (``POST /api/calls/{id}/dtmf``, ``DELETE /api/calls/{id}``) need it in ``X-Call-Token``. The call id alone is
  not a credential (it is printed in logs).
* A call's record is for supervisors and admins (logged in), or for the operator's own tools holding the
  service secret: ``Authorization: Bearer <record_token(secret, call_id)>`` (an HMAC of the call id, so a leaked
  token opens one record, never another).
* The record as served has no ``caller_key`` and no unmasked peer address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from typing import Any

TOKEN_HEADER = "X-Call-Token"


class CallTokens:
    """call id -> the token its caller's page holds (forgotten when the call's task ends)."""

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}

    def issue(self, call_id: str) -> str:
        """A new unguessable token for ``call_id``."""
        token = secrets.token_urlsafe(32)
        self._tokens[call_id] = token
        return token

    def forget(self, call_id: str) -> None:
        self._tokens.pop(call_id, None)

    def check(self, call_id: str, token: str | None) -> int:
        """0 when ``token`` is this call's, else the status to answer: 401 without a token, 403 a wrong one."""
        if not token:
            return 401
        expected = self._tokens.get(call_id, "")
        ok = hmac.compare_digest(token.encode(), expected.encode()) if expected else False
        return 0 if ok else 403

    def __len__(self) -> int:
        return len(self._tokens)


def record_token(secret: str, call_id: str) -> str:
    """The bearer token that opens ``call_id``'s record: HMAC-SHA256 of the id under the service secret."""
    return hmac.new(secret.encode(), b"ivr-record:" + call_id.encode(), hashlib.sha256).hexdigest()


def record_token_ok(secret: str, call_id: str, authorization: str) -> bool:
    scheme, _, value = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                              record_token(secret, call_id).encode())


def mask_peer(peer: str) -> str:
    """``203.0.113.45:5062`` -> ``203.0.113.*``; IPv6 keeps its /48; anything else becomes ``*``."""
    if peer.startswith("[") and "]" in peer:
        host = peer[1:peer.index("]")]
    else:
        host = peer.rsplit(":", 1)[0] if peer.count(":") == 1 else peer
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "*"
    if ip.version == 4:
        return ".".join(str(ip).split(".")[:3]) + ".*"
    return str(ipaddress.ip_network(f"{ip}/48", strict=False).network_address).rstrip(":") + ":*"


def public_record(body: dict[str, Any]) -> dict[str, Any]:
    """A call record dict as served: without ``caller_key``, peer addresses masked."""
    body = dict(body)
    body.pop("caller_key", None)
    extra = body.get("extra")
    if isinstance(extra, dict):
        body["extra"] = {k: (mask_peer(str(v)) if k in ("peer", "peer_ip", "remote") else v) for k, v in extra.items()}
    return body


def record_headers(settings: Any, call_id: str) -> dict[str, str]:
    """Headers that open ``call_id``'s record on a server sharing ``settings``' secret (replay, tests, scripts)."""
    from ivr.web.auth import service_secret

    return {"Authorization": f"Bearer {record_token(service_secret(settings), call_id)}"}

"""Messaging webhooks: signed JSON in and out, and the adapter interface a shop implements for its platform.

Signing (both directions): ``X-Ivr-Timestamp: <unix seconds>`` and
``X-Ivr-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>``. A message is refused when the
signature is wrong, the timestamp is more than ``webhook_max_skew_s`` away from now, or its message id was
already accepted (ids are kept ``webhook_retention_h`` in the ``webhook_messages`` table).

An adapter turns a platform's payload into an :class:`InboundMessage` and the bot's messages into the
platform's reply payload (:class:`MessagingAdapter`). :class:`ReferenceAdapter` (``reference``) is the documented
format; others are registered with :func:`register_adapter` or found under the ``ivr.messaging_adapters``
entry-point group (docs/chat.md).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

TIMESTAMP_HEADER = "X-Ivr-Timestamp"
SIGNATURE_HEADER = "X-Ivr-Signature"


class WebhookRefused(Exception):
    """A message that must not be processed: ``status`` and ``code`` for the JSON error answer; the answer's text is
    the language pack's ``web.webhook.<code>`` filled with ``fields`` (the message is for logs)."""

    def __init__(self, status: int, code: str, message: str, **fields: object) -> None:
        super().__init__(message)
        self.status, self.code, self.fields = status, code, fields


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One customer message from a platform: typed ``text`` or a quick reply (``key`` + ``label``)."""

    message_id: str
    conversation_id: str
    sender: str = ""
    text: str = ""
    key: str = ""
    label: str = ""


@runtime_checkable
class MessagingAdapter(Protocol):
    """What a platform adapter implements (the signature checks are done for it)."""

    name: str

    def parse(self, payload: dict[str, Any]) -> InboundMessage:
        """The customer message in ``payload``; raise ``ValueError`` (with a reason) when it is not one."""
        ...

    def render(self, inbound: InboundMessage, messages: list[dict[str, Any]], closed: bool) -> dict[str, Any]:
        """The platform's reply payload for the bot's ``messages`` (as :mod:`ivr.dialog.render_text` makes them)."""
        ...


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 over ``"<timestamp>." + body``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """Headers that sign ``body`` now (for replies, the example client and tests)."""
    ts = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature(secret, ts, body),
            "Content-Type": "application/json"}


def verify(secret: str, headers: Any, body: bytes, *, max_skew_s: float, now: float | None = None) -> None:
    """Raise :class:`WebhookRefused` unless ``body`` carries a valid, fresh signature under ``secret``."""
    ts, sig = headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
    if not ts or not sig:
        raise WebhookRefused(401, "unsigned", f"unsigned: {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required",
                             timestamp_header=TIMESTAMP_HEADER, signature_header=SIGNATURE_HEADER)
    if not hmac.compare_digest(signature(secret, ts, body).encode(), sig.strip().encode()):
        raise WebhookRefused(401, "bad_signature", "bad signature: not HMAC-SHA256(secret, timestamp + '.' + body)")
    try:
        sent = int(ts)
    except ValueError:
        raise WebhookRefused(401, "bad_timestamp", f"{TIMESTAMP_HEADER} must be Unix seconds",
                             timestamp_header=TIMESTAMP_HEADER) from None
    skew = abs((time.time() if now is None else now) - sent)
    if skew > max_skew_s:
        raise WebhookRefused(401, "stale_timestamp", f"timestamp {int(skew)} s off (at most {int(max_skew_s)} s)",
                             skew=int(skew), max_skew=int(max_skew_s))


def is_text(v: str) -> bool:
    """Encodable text: JSON's ``"\\ud800"`` escapes decode to lone surrogates, which no store or hash accepts."""
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _str(payload: dict[str, Any], name: str, limit: int, required: bool = True) -> str:
    v = payload.get(name, "")
    if not isinstance(v, str) or (required and not v.strip()) or len(v) > limit or not is_text(v):
        raise ValueError(f"{name!r} must be a {'non-empty ' if required else ''}string of at most {limit} characters")
    return v.strip()


class ReferenceAdapter:
    """The reference format. In: ``{"message_id", "conversation_id", "from", "text"}`` or with
    ``"quick_reply": {"key", "label"}`` instead of text. Out: ``{"conversation_id", "in_reply_to", "closed",
    "messages": [{"text", "quick_replies": [{"key", "label"}], "cards": [...]}]}``."""

    name = "reference"

    def parse(self, payload: dict[str, Any]) -> InboundMessage:
        mid, conv = _str(payload, "message_id", 128), _str(payload, "conversation_id", 128)
        sender = _str(payload, "from", 128, required=False)
        quick = payload.get("quick_reply")
        if quick is not None:
            if not isinstance(quick, dict) or not isinstance(quick.get("key"), str):
                raise ValueError('"quick_reply" must be {"key": "1", "label": "..."}')
            return InboundMessage(mid, conv, sender, key=quick["key"], label=str(quick.get("label") or ""))
        return InboundMessage(mid, conv, sender, text=_str(payload, "text", 500))

    def render(self, inbound: InboundMessage, messages: list[dict[str, Any]], closed: bool) -> dict[str, Any]:
        out = [{"text": m["text"], "quick_replies": m.get("quick_replies", []), "cards": m.get("cards", [])}
               for m in messages if m.get("role") == "bot"]
        return {"conversation_id": inbound.conversation_id, "in_reply_to": inbound.message_id, "closed": closed,
                "messages": out}


_ADAPTERS: dict[str, MessagingAdapter] = {"reference": ReferenceAdapter()}


def register_adapter(adapter: MessagingAdapter) -> None:
    """Make ``adapter`` available under ``adapter.name`` (it still needs a secret in ``webhook_secrets``)."""
    if not isinstance(adapter, MessagingAdapter):
        raise TypeError("an adapter has a name, parse(payload) and render(inbound, messages, closed)")
    _ADAPTERS[adapter.name] = adapter


def get_adapter(name: str) -> MessagingAdapter | None:
    """The adapter called ``name``: registered, or loaded from the ``ivr.messaging_adapters`` entry points."""
    if name not in _ADAPTERS:
        for ep in entry_points(group="ivr.messaging_adapters"):
            if ep.name == name:
                obj = ep.load()
                register_adapter(obj() if isinstance(obj, type) else obj)
                break
    return _ADAPTERS.get(name)

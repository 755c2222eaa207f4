#!/usr/bin/env python3
"""Example messaging-platform client for the ivr webhook (reference adapter), standard library only.

Sends one customer message, signed with HMAC-SHA256 over "<timestamp>." + body, checks the signature of the
reply the same way, and prints the bot's messages (or the reply JSON with --json)::

    scripts/webhook_client.py --url http://127.0.0.1:8080 --secret "$SECRET" --conversation c1 查订单
    scripts/webhook_client.py ... --conversation c1 --key 1 --label 查订单     # a quick reply

Exit status: 0 answered, 1 refused by the server (its error is printed), 2 the reply's signature is wrong.
Copy it as the starting point of a bridge to a real platform (docs/chat.md).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request
import uuid


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def send(url: str, secret: str, payload: dict, *, adapter: str = "reference", timestamp: int | None = None,
         timeout: float = 30.0) -> tuple[int, dict, bool]:
    """POST ``payload`` signed; (status, reply JSON, reply signature valid)."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    req = urllib.request.Request(f"{url.rstrip('/')}/api/webhook/{adapter}", data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Ivr-Timestamp": ts, "X-Ivr-Signature": sign(secret, ts, body)})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, data, headers = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, data, headers = e.code, e.read(), e.headers
    reply_ts = headers.get("X-Ivr-Timestamp") or ""
    ok = bool(reply_ts) and hmac.compare_digest(sign(secret, reply_ts, data), headers.get("X-Ivr-Signature") or "")
    return status, json.loads(data or b"{}"), ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("text", nargs="?", default="", help="what the customer types")
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--secret", required=True, help="the adapter's secret (webhook_secrets in the ivr config)")
    p.add_argument("--adapter", default="reference")
    p.add_argument("--conversation", default="demo", help="the platform's conversation/thread id")
    p.add_argument("--sender", default="", help="the platform's user id")
    p.add_argument("--message-id", default="", help="default: a new random id")
    p.add_argument("--key", default="", help="send a quick reply with this key instead of text")
    p.add_argument("--label", default="")
    p.add_argument("--timestamp", type=int, default=None, help="override the signed timestamp (tests)")
    p.add_argument("--json", action="store_true", help="print the reply JSON")
    a = p.parse_args(argv)
    payload: dict = {"message_id": a.message_id or uuid.uuid4().hex, "conversation_id": a.conversation,
                     "from": a.sender}
    if a.key:
        payload["quick_reply"] = {"key": a.key, "label": a.label}
    else:
        payload["text"] = a.text
    status, reply, signed = send(a.url, a.secret, payload, adapter=a.adapter, timestamp=a.timestamp)
    if status != 200:
        print(f"refused ({status} {reply.get('code', '')}): {reply.get('error', reply)}", file=sys.stderr)
        return 1
    if not signed:
        print("the reply's signature is wrong: not from the ivr server holding this secret", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(reply, ensure_ascii=False))
        return 0
    for m in reply.get("messages", []):
        print(f"bot> {m['text']}")
        for c in m.get("cards", []):
            print(f"     [订单 {c.get('order_id')} · {c.get('status_text')}]")
        if m.get("quick_replies"):
            print("     " + " | ".join(f"{q['key']}={q['label']}" for q in m["quick_replies"]))
    if reply.get("closed"):
        print("(会话已结束)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

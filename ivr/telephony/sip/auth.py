"""Who may call in: an allow-list of peer networks and/or HTTP digest auth on INVITE (RFC 3261 §22, RFC 7616)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import time
from dataclasses import dataclass, field

NONCE_TTL_S = 300
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


def parse_networks(spec: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """'10.0.0.0/8, 192.0.2.7' -> networks; raises ValueError naming the bad entry."""
    nets = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {item!r}") from None
    return nets


def parse_digest(header: str) -> dict[str, str]:
    """Parameters of a ``Digest k=v, k="v"`` header (empty dict if not digest)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    return {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM.finditer(rest)}


@dataclass
class AccessPolicy:
    """Allow-list (empty = anyone) and optional digest credentials for inbound INVITEs."""

    allow: list = field(default_factory=list)
    username: str = ""
    password: str = ""
    realm: str = "ivr"
    _key: bytes = field(default_factory=lambda: os.urandom(16), repr=False)

    def source_allowed(self, ip: str) -> bool:
        if not self.allow:
            return True
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.allow)

    @property
    def digest_enabled(self) -> bool:
        return bool(self.username)

    def challenge(self, stale: bool = False) -> str:
        """A WWW-Authenticate value with a fresh self-validating nonce (no server state)."""
        ts = str(int(time.time()))
        nonce = f"{ts}.{hmac.new(self._key, ts.encode(), hashlib.sha256).hexdigest()[:24]}"
        return (f'Digest realm="{self.realm}", nonce="{nonce}", algorithm=MD5, qop="auth"'
                + (", stale=true" if stale else ""))

    def verify(self, method: str, authorization: str | None) -> str:
        """'ok', 'missing' (challenge), 'stale' (re-challenge) or 'bad' (403)."""
        if not authorization:
            return "missing"
        p = parse_digest(authorization)
        if not p or p.get("username") != self.username or p.get("realm") != self.realm:
            return "bad" if p else "missing"
        nonce = p.get("nonce", "")
        ts, _, mac = nonce.partition(".")
        good_mac = hmac.new(self._key, ts.encode(), hashlib.sha256).hexdigest()[:24]
        if not ts.isdigit() or not hmac.compare_digest(mac, good_mac):
            return "bad"
        if time.time() - int(ts) > NONCE_TTL_S:
            return "stale"
        algo = p.get("algorithm", "MD5").upper()
        h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}.get(algo)
        if h is None:
            return "bad"

        def hx(s: str) -> str:
            return h(s.encode()).hexdigest()

        ha1 = hx(f"{self.username}:{self.realm}:{self.password}")
        ha2 = hx(f"{method}:{p.get('uri', '')}")
        if p.get("qop"):
            expected = hx(f"{ha1}:{nonce}:{p.get('nc', '')}:{p.get('cnonce', '')}:{p['qop']}:{ha2}")
        else:
            expected = hx(f"{ha1}:{nonce}:{ha2}")
        return "ok" if hmac.compare_digest(expected, p.get("response", "")) else "bad"

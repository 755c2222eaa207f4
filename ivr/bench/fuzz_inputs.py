"""Hypothesis strategies for fuzzing: SIP messages, SDP bodies, HTTP API requests and WebRTC offers.

Each strategy mixes well-formed-but-odd inputs (compact headers, folded lines, odd URIs, codecs and directions,
unicode, huge numbers) with malformed ones (missing parts, wrong types, byte mutations, random bytes). ``live``
variants keep every address a message could make the gateway send to on loopback (or unusable), so a fuzz run
never sends traffic off the machine. SIP messages are templates: ``{me}`` (our port), ``{gw}`` (gateway port),
``{cid}``, ``{ftag}``, ``{ttag}``, ``{seq}``, ``{branch}`` are filled in when a case is sent.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass

from hypothesis import strategies as st


# Strategies drawn inside the composites below are built once, not per draw: a fresh ``st.sampled_from`` or
# ``st.integers`` per draw is validated again each time, which cost about half of the generation's CPU. The
# examples are the same (same strategies, same draws; no new number literals in this module either: Hypothesis
# also draws integers from the constants of the code it runs).
@functools.cache
def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


def _pick(options: Iterable) -> st.SearchStrategy:
    """``st.sampled_from(options)``, built once per distinct list of options."""
    return _sampled_from(tuple(options))


_sampled_from = functools.cache(st.sampled_from)


# --- small pieces -------------------------------------------------------------------------------------------
ODD_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._!%*+`'~", min_size=1,
                max_size=20)
NUMBERISH = st.one_of(st.integers(-5, 70000).map(str), st.sampled_from(
    ["0", "-1", "4294967296", "99999999999999999999", "1e3", "0x10", "", " ", "abc", "1.5", "08", "+5"]))
LIVE_HOSTS = ["127.0.0.1", "0.0.0.0", "::", "::1", "127.0.0.2"]
ANY_HOSTS = LIVE_HOSTS + ["localhost", "example.invalid", "224.0.0.1", "255.255.255.255", "999.1.1.1", "",
                          "a b", "fe80::1%eth0", "[::1]", "::ffff:127.0.0.1", "1.2.3", "10.0.0.1", "电话.中国"]
EOL = st.sampled_from(["\r\n"] * 8 + ["\n", "\r"])
BOOL = st.booleans()


@st.composite
def _mutated(draw, text: str, p: float = 0.15) -> str:
    """``text`` with, sometimes, a few character-level mutations (insert, delete, duplicate, swap)."""
    if draw(_ints(0, 99)) >= p * 100:
        return text
    for _ in range(draw(_ints(1, 3))):
        if not text:
            break
        i = draw(_ints(0, len(text) - 1))
        op = draw(_pick(["ins", "del", "dup", "swap", "ctl"]))
        if op == "ins":
            text = text[:i] + draw(ODD_TEXT) + text[i:]
        elif op == "del":
            text = text[:i] + text[i + draw(_ints(1, 20)):]
        elif op == "dup":
            text = text[:i] + text[i:i + 30] * draw(_ints(2, 5)) + text[i:]
        elif op == "swap":
            j = draw(_ints(0, len(text) - 1))
            text = text[:min(i, j)] + text[max(i, j):] + text[min(i, j):max(i, j)]
        else:
            text = text[:i] + draw(_pick(["\x00", "\r", "\n", "\t", "\x7f", "\r\n\r\n", ":", ";", "\"",
                                          "<", ">", "\\", "\u2028", "\ufeff"])) + text[i:]
    return text


# --- SDP ------------------------------------------------------------------------------------------------------
CODECS = [(0, "PCMU/8000"), (8, "PCMA/8000"), (101, "telephone-event/8000"), (111, "opus/48000/2"),
          (9, "G722/8000"), (18, "G729/8000"), (96, "telephone-event/48000"), (13, "CN/8000"), (3, "GSM/8000")]


_PT_ODD = st.one_of(st.integers(0, 127).map(str), NUMBERISH)


@st.composite
def _rtpmap(draw) -> tuple[str, list[str]]:
    pt, enc = draw(_pick(CODECS)) if draw(_ints(0, 4)) else (
        draw(_PT_ODD),
        draw(_pick(["PCMU", "pcma", "telephone-event", "x"])) + draw(_pick(
            ["/8000", "/0", "/-1", "/abc", "", "/8000/2", "/99999999999999999999", "/"])))
    lines = [f"a=rtpmap:{pt} {enc}"]
    if "telephone-event" in str(enc) and draw(BOOL):
        lines.append(f"a=fmtp:{pt} " + draw(_pick(["0-16", "0-15,66,70", "", "x", "16-0", "0-"])))
    return str(pt), lines


_RTPMAPS = st.lists(_rtpmap(), max_size=5)
_PORT = st.one_of(st.integers(1024, 65000).map(str), NUMBERISH, st.just("40000/2"))
_EXTRA_FMTS = st.lists(st.sampled_from(["0", "8", "18", "101", "127", "128", "-1", "x", "96"]), max_size=3)


@st.composite
def sdp_bodies(draw, live: bool = True) -> str:
    """An SDP offer: mostly a plausible audio offer with odd details, sometimes broken in any part."""
    hosts = LIVE_HOSTS if live else ANY_HOSTS
    eol = draw(EOL)
    addr = draw(_pick(hosts))
    fam = "IP6" if ":" in addr else "IP4"
    if draw(_ints(0, 9)) == 0:
        fam = draw(_pick(["IP4", "IP6", "ip4", "", "IPX"]))
    lines = [draw(_pick(["v=0"] * 12 + ["v=1", "v=", "v=0 ", " v=0", "V=0"]))]
    if draw(_ints(0, 12)):
        lines.append(f"o={draw(_pick(['-', 'user', '']))} {draw(NUMBERISH)} {draw(NUMBERISH)} IN {fam} "
                     f"{draw(_pick(hosts))}")
    lines.append(draw(_pick(["s=-", "s=", "s=ivr fuzz", "s= ", "s=通话"])))
    conn = f"c=IN {fam} {addr}" + draw(_pick([""] * 8 + ["/127", "/127/3", "/", "/x"]))
    at_session = draw(BOOL)
    if at_session and draw(_ints(0, 15)):
        lines.append(conn)
    lines.append(draw(_pick(["t=0 0"] * 6 + ["t=", "t=0", "t=x y", "t=3034423619 0"])))
    if draw(_ints(0, 4)) == 0:
        lines.append("a=" + draw(_pick(["sendrecv", "sendonly", "recvonly", "inactive", "ice-lite",
                                        "group:BUNDLE 0", "x"])))
    for m in range(draw(_ints(0, 3)) if draw(_ints(0, 9)) == 0 else 1):
        kind = "audio" if m == 0 and draw(_ints(0, 12)) else draw(_pick(
            ["audio", "video", "application", "image", "text", "", "AUDIO"]))
        port = draw(_PORT)
        proto = draw(_pick(["RTP/AVP"] * 8 + ["RTP/SAVP", "RTP/AVPF", "UDP/TLS/RTP/SAVPF", "rtp/avp",
                                                "UDP/BFCP", "RTP/AVP ", "", "TCP/RTP/AVP"]))
        maps = draw(_RTPMAPS)
        fmts = [pt for pt, _ in maps] + draw(_EXTRA_FMTS)
        if draw(_ints(0, 3)) == 0:
            fmts = list(reversed(fmts))
        lines.append(f"m={kind} {port} {proto} {' '.join(fmts)}".rstrip(" ") if draw(_ints(0, 15)) else "m=")
        if not at_session or draw(_ints(0, 3)) == 0:
            lines.append(conn)
        for _, ls in maps:
            lines.extend(ls)
        for _ in range(draw(_ints(0, 3))):
            lines.append(draw(_pick([
                "a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive", "a=ptime:20", "a=ptime:0", "a=ptime:x",
                "a=maxptime:-1", "a=rtcp-mux", f"a=rtcp:{draw(NUMBERISH)}", f"a=rtcp:9 IN IP4 {addr}", "a=",
                "a=:", "a=rtpmap:", "a=rtpmap:0", "a=fmtp:", "a=mid:0", "a=ssrc:1 cname:x", "a=setup:actpass",
                "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x", "a=silenceSupp:off - - - -", "b=AS:64", "i=x",
                "k=clear:x", "x=unknown", "=", "justtext", "a=" + "x" * 300])))
    text = eol.join(lines) + eol
    if draw(_ints(0, 10)) == 0:
        text = text + draw(_pick(["\x00", "\r\n\r\n", "a=sendrecv", " " * 10, "\xff\xfe"]))
    return draw(_mutated(text))


_SDP_LIVE, _SDP_ANY = sdp_bodies(live=True), sdp_bodies(live=False)


# --- SIP ------------------------------------------------------------------------------------------------------
_RAW = st.binary(max_size=600)
METHODS = ["INVITE"] * 10 + ["OPTIONS", "BYE", "CANCEL", "ACK", "INFO", "UPDATE", "PRACK", "REFER", "NOTIFY",
                             "REGISTER", "SUBSCRIBE", "MESSAGE", "PUBLISH", "invite", "FOO", "INV ITE", "", "123"]
IN_DIALOG = ["INVITE"] * 4 + ["INFO"] * 3 + ["BYE", "UPDATE", "ACK", "OPTIONS", "REFER", "NOTIFY", "PRACK",
                                              "CANCEL", "MESSAGE"]


@dataclass
class SipCase:
    """One SIP message to send: header lines and body (templates, see the module docstring)."""

    lines: list[str]
    body: str
    eol: str = "\r\n"
    transport: str = "udp"
    in_dialog: bool = False
    raw: bytes | None = None  # random bytes instead of a message

    def render(self, **values: object) -> bytes:
        if self.raw is not None:
            return self.raw
        text = self.eol.join(self.lines) + self.eol + self.eol + self.body
        for k, v in values.items():
            text = text.replace("{" + k + "}", str(v))
        return text.encode("utf-8", "surrogatepass")


def _choice(draw, normal: str, odd: list[str], p_odd: int = 5) -> str | None:
    """``normal`` most of the time; 1 in ``p_odd``: one of ``odd`` (None = leave the header out)."""
    if draw(_ints(0, p_odd - 1)):
        return normal
    return draw(_pick(odd + [None]))


@st.composite
def sip_messages(draw) -> SipCase:
    """A SIP request (sometimes random bytes), new or in the dialog of a live call."""
    transport = draw(_pick(["udp", "udp", "tcp"]))
    if draw(_ints(0, 30)) == 0:
        return SipCase([], "", transport=transport, raw=draw(_RAW))
    in_dialog = draw(_ints(0, 3)) == 0
    method = draw(_pick(IN_DIALOG if in_dialog else METHODS))
    T = "TCP" if transport == "tcp" else "UDP"
    uri = _choice(draw, "sip:bot@127.0.0.1:{gw}", [
        "sips:bot@127.0.0.1:{gw}", "tel:+8613800138000", "sip:", "*", "sip:bot@[::1]", "sip:%00@127.0.0.1",
        "sip:bot@127.0.0.1:{gw};transport=tcp;lr", "<sip:bot@127.0.0.1>", "sip:" + "9" * 300 + "@127.0.0.1",
        "sip:bot@127.0.0.1:99999", "sip:bot@127.0.0.1:-1", "sip:bot:pw@127.0.0.1", "http://127.0.0.1/"]) or ""
    version = _choice(draw, "SIP/2.0", ["SIP/1.0", "sip/2.0", "SIP/2.00", "HTTP/1.1", "SIP/", "SIP/3.0"], 15) or ""
    lines = [f"{method} {uri} {version}".strip() if draw(_ints(0, 20)) else f"{method}  {uri}"]
    h: list[tuple[str, str | None]] = []
    rport = ";rport" if transport == "tcp" or draw(BOOL) else ""
    h.append(("Via", _choice(draw, f"SIP/2.0/{T} 127.0.0.1:{{me}};branch=z9hG4bK{{branch}}{rport}", [
        f"SIP/2.0/{T} 127.0.0.1:{{me}}", f"SIP/2.0/{T} localhost:{{me}};branch=z9hG4bK{{branch}};rport",
        f"SIP/2.0/{T} 127.0.0.1:{{me}};branch=x{{branch}};received=127.0.0.1;rport",
        f"SIP/2.0/{T} 127.0.0.1:{{me}};branch=z9hG4bK{{branch}};rport, SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKb",
        f"SIP/2.0/{T}  127.0.0.1 : {{me}} ; branch = z9hG4bK{{branch}};rport", "SIP/2.0/UDP", "garbage", "",
        "SIP/2.0/SCTP 127.0.0.1:{me};branch=z9hG4bK{branch};rport",
        f"SIP/2.0/{T} 127.0.0.1:{{me}};branch=z9hG4bK{{branch}};rport=abc",
        f"SIP/2.0/{T} 127.0.0.1:{{me}};branch=z9hG4bK{{branch}};rport;ttl=300;maddr=127.0.0.1"], 6)))
    user = draw(_pick(["13800138000", "anonymous", "", "alice", "+86 138", "1" * 80, "%E5%BC%A0",
                       "a;b=c", "unknown", "Restricted"]))
    disp = _choice(draw, "", ['"张伟" ', '"a\\"b" ', "Bob ", '"unterminated ', '"" ', '"' + "x" * 200 + '" '], 3)
    h.append(("From", _choice(draw, f"{disp or ''}<sip:{user}@127.0.0.1:{{me}}>;tag={{ftag}}", [
        f"sip:{user}@127.0.0.1;tag={{ftag}}", f"<sip:{user}@127.0.0.1>", "<tel:+8613800138000>;tag={ftag}",
        "<sip:@>;tag={ftag}", "<>;tag={ftag}", ";tag=", "<sip:a@127.0.0.1;tag={ftag}", "garbage",
        "<sip:a@127.0.0.1>;tag={ftag};tag=x"])))
    to_tag = ";tag={ttag}" if in_dialog else draw(_pick([""] * 9 + [";tag=nosuchdialog"]))
    h.append(("To", _choice(draw, f"<sip:bot@127.0.0.1:{{gw}}>{to_tag}", [
        "sip:bot@127.0.0.1", "<sip:bot@127.0.0.1>;tag=", "<>", "garbage", "<sip:bot@127.0.0.1>;tag={ttag};tag=y"])))
    h.append(("Call-ID", _choice(draw, "{cid}", ["{cid}@127.0.0.1", "{cid} spaced out", "", "{cid}" + "x" * 900,
                                                  "{cid}@[::1]", "{cid}\x00"])))
    cseq_method = method if draw(_ints(0, 10)) else draw(_pick(["INVITE", "BYE", "", "ACK", "X"]))
    h.append(("CSeq", _choice(draw, f"{{seq}} {cseq_method}", [
        f"0 {cseq_method}", f"-1 {cseq_method}", f"4294967296 {cseq_method}", f"abc {cseq_method}", "1",
        f"1 {cseq_method} extra", f"99999999999999999999 {cseq_method}", f"1 {cseq_method}", ""])))
    h.append(("Contact", _choice(draw, "<sip:caller@127.0.0.1:{me}>", [
        "*", "<sip:caller@127.0.0.1:{me}>;expires=0", "garbage", "", "<sip:caller@127.0.0.1:{me};transport=tcp>",
        "<sips:caller@127.0.0.1:{me}>", '"x" <sip:caller@127.0.0.1:{me}>;+sip.instance="<urn:x>"'], 6)))
    h.append(("Max-Forwards", _choice(draw, "70", ["0", "1", "-1", "abc", "256", "", "99999999999999999999"], 8)))
    for _ in range(draw(_ints(0, 4))):
        h.append(draw(_pick([
            ("Require", "timer"), ("Require", "100rel"), ("Require", "frobnicate, timer"), ("Supported", "timer"),
            ("Session-Expires", "90"), ("Session-Expires", "30;refresher=uac"), ("Session-Expires", "abc"),
            ("Min-SE", "90"), ("Min-SE", "-5"), ("Allow", "INVITE, ACK"), ("User-Agent", "x" * 3000),
            ("Subject", "\u8ba2\u5355"), ("Authorization", 'Digest username="a", realm="ivr", nonce="", uri="x"'),
            ("Authorization", "Basic Zm9vOmJhcg=="), ("P-Asserted-Identity", "<sip:13800138000@127.0.0.1>"),
            ("Privacy", "id"), ("Replaces", "{cid};to-tag=x;from-tag=y"), ("Refer-To", "<sip:agent@127.0.0.1:{me}>"),
            ("Refer-To", "garbage"), ("Event", "refer"), ("Subscription-State", "terminated;reason=noresource"),
            ("Record-Route", "<sip:127.0.0.1:{me};lr>"), ("Route", "<sip:127.0.0.1:{gw};lr>"),
            ("RAck", "1 1 INVITE"), ("RAck", "x"), ("Expires", "-1"), ("Accept", "application/sdp"),
            ("X-Ivr-Call-Id", "sip-000000000000"), ("", "nameless"), ("Bad Header", "x"), ("l", "5"),
            ("v", f"SIP/2.0/{T} 127.0.0.1:{{me}};branch=z9hG4bKc"), ("i", "{cid}"), ("f", "<sip:x@127.0.0.1>"),
            (" Folded", "x"), ("X-Fold", "a\r\n b\r\n\tc"), ("X-Empty", ""), ("X-Unicode", "\u7535\u8bdd\U0001f4de"),
        ])))
    if draw(_ints(0, 6)) == 0:  # compact forms
        compact = {"Via": "v", "From": "f", "To": "t", "Call-ID": "i", "Contact": "m", "Content-Type": "c"}
        h = [(compact.get(k, k) if draw(BOOL) else k.upper(), v) for k, v in h]
    body, ctype = "", None
    if method in ("INVITE", "UPDATE", "PRACK", "ACK") and draw(_ints(0, 5)):
        body, ctype = draw(_SDP_LIVE), "application/sdp"
    elif method == "INFO":
        digit = draw(_pick(["5", "*", "#", "A", "x", "", "55", "\u4e94", "16"]))
        body = draw(_pick([f"Signal={digit}\r\nDuration=160\r\n", f"Signal= {digit}", "Duration=100",
                           "Signal=\r\n", digit, f"Signal={digit}\nSignal=1"]))
        ctype = draw(_pick(["application/dtmf-relay", "application/dtmf", "text/plain"]))
    elif draw(_ints(0, 8)) == 0:
        body, ctype = draw(ODD_TEXT), draw(_pick(["application/sdp", "text/plain", "message/sipfrag"]))
    if ctype:
        h.append(("Content-Type", _choice(draw, ctype, ["APPLICATION/SDP; charset=utf-8", "text/plain", "", "/",
                                                        "application/sdp;;", "multipart/mixed;boundary=x"], 8)))
    length = len(body.encode("utf-8", "surrogatepass"))
    h.append(("Content-Length", _choice(draw, str(length), [
        str(length + 5), str(max(0, length - 5)), "-1", "abc", "0", "99999999", " " + str(length)], 10)))
    if draw(_ints(0, 5)) == 0:
        h = draw(st.permutations(h))
    if draw(_ints(0, 10)) == 0 and h:
        h.append(draw(_pick(h)))  # a duplicated header
    lines += [f"{k}: {v}" if draw(_ints(0, 25)) else f"{k}:{v}" for k, v in h if v is not None]
    eol = draw(EOL)
    case = SipCase(lines, body, eol=eol, transport=transport, in_dialog=in_dialog)
    if draw(_ints(0, 6)) == 0:  # character-level damage anywhere in the message
        text = draw(_mutated(eol.join(lines) + eol + eol + body, p=1.0))
        case.lines, case.body, case.eol = [text], "", ""
    return case


# --- HTTP -----------------------------------------------------------------------------------------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | ODD_TEXT,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(ODD_TEXT, kids, max_size=4), max_leaves=12)
_EXTRA_KEYS = st.dictionaries(ODD_TEXT, JSON_VALUES, max_size=3)
IDS = st.one_of(st.sampled_from(["{live}", "{live}", "nosuchcall", "sip-000000000000", "0", "..", "%2e%2e",
                                 "a" * 300, "%00", "%E7%94%B5", "of_x", "-1", "null", "{live}%20"]), TOKEN)


@dataclass
class HttpCase:
    """One HTTP request. ``auth``: none, agent or supervisor (the harness holds their login cookies)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    auth: str = "none"


def _json_body(draw, shape: dict) -> bytes:
    """A body for an API expecting ``shape``: right keys with odd values, wrong types, or broken bytes."""
    kind = draw(_ints(0, 9))
    if kind <= 4:
        obj = {k: (v if draw(_ints(0, 2)) else draw(JSON_VALUES)) for k, v in shape.items()
               if draw(_ints(0, 6))}
        if draw(_ints(0, 3)) == 0:
            obj.update(draw(_EXTRA_KEYS))
        return json.dumps(obj, ensure_ascii=draw(BOOL)).encode()
    if kind <= 6:
        return json.dumps(draw(JSON_VALUES)).encode()
    return draw(_pick([
        b"", b"{", b"null", b"[]", b'{"a":}', b"\xff\xfe\x00", b'{"digits": "1"', b"NaN", b'{"x": Infinity}',
        b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000, b'"' + b"\\ud800" + b'"',
        b"\xef\xbb\xbf{}", b"username=a&password=b", b"--x\r\nContent-Disposition: form-data\r\n\r\n--x--",
        b'{"digits": "' + b"1" * 100000 + b'"}', json.dumps(shape).encode() * 2]))


API = [
    ("POST", "/api/calls/{id}/dtmf", {"digits": "1"}),
    ("DELETE", "/api/calls/{id}", None),
    ("GET", "/api/calls/{id}", None),
    ("POST", "/api/calls/webrtc", {"type": "offer", "sdp": "v=0"}),
    ("POST", "/api/login", {"username": "fz_agent", "password": "x"}),
    ("POST", "/api/logout", None),
    ("GET", "/api/me", None),
    ("GET", "/api/agent/state", None),
    ("POST", "/api/agent/presence", {"state": "available"}),
    ("POST", "/api/agent/offers/{id}/accept", {"via": "sip"}),
    ("POST", "/api/agent/offers/{id}/decline", {}),
    ("POST", "/api/agent/calls/{id}/hangup", {}),
    ("POST", "/api/agent/calls/{id}/wrapup", {"disposition": "resolved", "note": "x"}),
    ("GET", "/api/agent/calls/{id}", None),
    ("GET", "/api/stats/calls/{id}", None),
    ("GET", "/health", None), ("GET", "/metrics", None)]
_API = st.sampled_from(API)  # (its shapes are dicts: not for _pick's cache)
STATS = ["/api/stats", "/api/stats/calls", "/api/stats/unrecognised", "/api/stats/export.csv"]
QUERY_VALUES = st.one_of(st.sampled_from(["7d", "1d", "30d", "all", "today", "", "-1d", "99999d", "sip", "webrtc",
                                          "2026-01-01", "2026-13-45", "2026-01-01T00:00:00", "1e308", "day", "hour",
                                          "week", "month", "%00", "x" * 500]), ODD_TEXT)
_QUERY = st.dictionaries(st.sampled_from(["period", "channel", "from", "to", "bucket", "limit", "offset", "q",
                                          "intent"]), QUERY_VALUES, max_size=4)


@st.composite
def http_requests(draw) -> HttpCase:
    """A request to one of the service's JSON APIs (or a form/page), with odd paths, headers and bodies."""
    auth = draw(_pick(["none", "agent", "supervisor"]))
    headers = {}
    ctype = _choice(draw, "application/json", ["text/plain", "application/x-www-form-urlencoded",
                                               "multipart/form-data; boundary=x", "application/json; charset=gbk",
                                               "", "application/json\x7f", "*/*"], 4)
    if ctype is not None:
        headers["content-type"] = ctype
    origin = _choice(draw, "{origin}", ["null", "http://evil.example", "", "{origin}/x"], 4)
    if origin is not None:
        headers["origin"] = origin
    if draw(_ints(0, 8)) == 0:
        headers["cookie"] = draw(_pick(["ivr_session=garbage", "ivr_session=", "ivr_session=" + "a." * 400,
                                        "ivr_session=eyJhIjoxfQ.x.y", "a=b; ivr_session=\"x\""]))
    if draw(_ints(0, 10)) == 0:
        headers[draw(_pick(["accept", "x-forwarded-for", "x-call-token", "authorization", "range"]))] = \
            draw(_pick(["*/*", "1.2.3.4", "Bearer x", "bytes=0-1", "\u00e9", "x" * 2000]))
    kind = draw(_ints(0, 9))
    if kind <= 6:
        method, path, shape = draw(_API)
        path = path.replace("{id}", draw(IDS))
        body = _json_body(draw, shape) if method != "GET" and shape is not None else (
            _json_body(draw, {}) if draw(_ints(0, 5)) == 0 else None)
    elif kind <= 8:
        method = "GET"
        params = draw(_QUERY)
        from urllib.parse import urlencode
        path = draw(_pick(STATS)) + ("?" + urlencode(params) if params else "")
        if draw(_ints(0, 4)) == 0:
            path = path.replace("{id}", draw(IDS)) if "{id}" in path else "/api/stats/calls/" + draw(IDS)
        body = None
    else:
        method = draw(_pick(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]))
        path = draw(_pick(["/login", "/login?next=//evil.example", "/logout", "/phone", "/agent",
                           "/dashboard", "/", "/api", "/api/", "/api/calls", "/api/calls/", "/static/x",
                           "/static/../../etc/passwd", "/api/calls/%2F..%2F", "/docs", "/openapi.json",
                           "/%ff", "/api/agent/offers//accept"]))
        body = draw(_pick([None, b"username=fz_agent&password=x&next=/agent", b"username=&password=",
                           b"next=" + b"x" * 5000, b"\xff\xfe", b"{}"]))
    if draw(_ints(0, 3)) == 0 and "?" not in path:
        path += "?" + draw(_pick(["x=1", "next=/agent", "a=%ff", "=", "&&", "token=x"]))
    return HttpCase(method, path, headers, body, auth)


# --- WebRTC offers --------------------------------------------------------------------------------------------
BROWSER_OFFER = (
    "v=0\r\no=- 4215775240449105457 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "a=extmap-allow-mixed\r\na=msid-semantic: WMS stream\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 9 0 8 110 126\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\na=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 {fp}\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=msid:stream track\r\n"
    "a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:110 telephone-event/48000\r\n"
    "a=rtpmap:126 telephone-event/8000\r\na=ssrc:1001 cname:fuzz\r\n{cand}"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:{ufrag}\r\n"
    "a=ice-pwd:{pwd}\r\na=fingerprint:sha-256 {fp}\r\na=setup:actpass\r\na=mid:1\r\na=sctp-port:5000\r\n"
    "a=max-message-size:262144\r\n")
FINGERPRINT = ":".join(["AB"] * 32)


@st.composite
def webrtc_offers(draw) -> dict | str:
    """A JSON body for POST /api/calls/webrtc: a browser-like offer with odd or broken lines, or a broken body."""
    kind = draw(_ints(0, 19))
    if kind == 0:
        return draw(_pick(['{"type": "offer"}', '{"sdp": null, "type": "offer"}', "[]", "",
                           '{"sdp": "v=0", "type": "answer"}', '{"sdp": 5, "type": "offer"}']))
    if kind == 1:
        return {"type": "offer", "sdp": draw(_SDP_ANY)}
    cand = draw(_pick(["", "", "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n",
                       "a=candidate:1 1 udp 2122260223 127.0.0.1 0 typ host\r\n",
                       "a=candidate:x\r\n", "a=candidate:1 1 tcp 1 127.0.0.1 9 typ host tcptype active\r\n",
                       "a=end-of-candidates\r\n"]))
    sdp = BROWSER_OFFER.format(ufrag=draw(_pick(["fUzZ", "", "a" * 300, "x y", "\u00e9t\u00e9"])),
                               pwd=draw(_pick(["fuzzfuzzfuzzfuzzfuzzfuzz", "", "short"])),
                               fp=draw(_pick([FINGERPRINT, "", "zz", FINGERPRINT[:20]])), cand=cand)
    lines = sdp.split("\r\n")
    for _ in range(draw(_ints(0, 4))):
        if not lines:
            break
        i = draw(_ints(0, len(lines) - 1))
        op = draw(_pick(["drop", "dup", "replace", "insert"]))
        if op == "drop":
            lines.pop(i)
        elif op == "dup":
            lines.insert(i, lines[i])
        else:
            new = draw(_pick([
                "m=audio 9 UDP/TLS/RTP/SAVPF 18", "m=audio 0 UDP/TLS/RTP/SAVPF 111", "m=video 9 UDP/TLS/RTP/SAVPF 96",
                "a=rtpmap:96 VP8/90000", "a=inactive", "a=recvonly", "a=sendonly", "a=setup:active", "a=setup:x",
                "a=mid:", "a=group:BUNDLE 5", "a=rtpmap:111 opus/0/2", "a=rtpmap:111", "a=fmtp:111 x",
                "a=ssrc-group:FID 1", "a=ssrc:x", "a=rtcp-fb:* nack", "a=fingerprint:md5 AB", "a=sctp-port:x",
                "c=IN IP6 ::", "c=IN IP4 224.0.0.1", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
                "a=extmap:1 urn:x", "a=extmap:x", "b=AS:-1", "m=", "a=", "x", "a=ice-lite", "a=rtcp:x",
                "a=candidate:1 1 udp 1 999.1.1.1 9 typ host", "a=msid:", "s=", "o=- x x IN IP4 x"]))
            if op == "replace":
                lines[i] = new
            else:
                lines.insert(i, new)
    text = "\r\n".join(lines)
    if draw(_ints(0, 5)) == 0:
        text = text.replace("\r\n", "\n")
    return {"type": draw(_pick(["offer"] * 15 + ["answer", "OFFER", "", "pranswer"])),
            "sdp": draw(_mutated(text, p=0.1))}

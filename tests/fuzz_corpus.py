"""Fixed fuzz cases that every run of tests/test_fuzz_*.py plays before its generated ones.

The inputs that found bugs here (the "fuzz finding" commits) and the well-known nasty shapes of each input, so a
smaller generated run never leaves them to chance: a Via-less INVITE with a bad Max-Forwards, an in-dialog CSeq
beyond 32 bits or going backwards, a bare CR in a routing header of a refused message, TCP requests whose Via is
unreadable or names another port, an IPv6 ``c=`` on the IPv4 gateway, JSON nested too deep for ``json.loads``,
WebRTC offers with a BUNDLE group naming a missing mid, duplicate mids or no DTLS fingerprint, ... Each case goes
through the same checks as a generated one (no 5xx but the deliberate ones, no traceback, no hang).
"""

from __future__ import annotations

from ivr.bench.fuzz_inputs import BROWSER_OFFER, FINGERPRINT, HttpCase, SipCase

# --- SIP (templates: see ivr/bench/fuzz_inputs.py) ------------------------------------------------------------
AUDIO_SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             "m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
             "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n")


def _headers(method: str, transport: str = "udp", in_dialog: bool = False, cseq: str = "{seq}",
             **replace: str | None) -> list[str]:
    """A well-formed request's lines; ``replace`` swaps a header's value (None leaves the header out)."""
    t = transport.upper()
    values = {"Via": f"SIP/2.0/{t} 127.0.0.1:{{me}};branch=z9hG4bK{{branch}};rport",
              "From": "<sip:13800138000@127.0.0.1:{me}>;tag={ftag}",
              "To": "<sip:bot@127.0.0.1:{gw}>" + (";tag={ttag}" if in_dialog else ""),
              "Call-ID": "{cid}", "CSeq": f"{cseq} {method}", "Contact": "<sip:caller@127.0.0.1:{me}>",
              "Max-Forwards": "70"}
    values.update({k.replace("_", "-"): v for k, v in replace.items()})
    return [f"{method} sip:bot@127.0.0.1:{{gw}} SIP/2.0"] + [f"{k}: {v}" for k, v in values.items() if v is not None]


def _sip(method: str, body: str = "", *, transport: str = "udp", in_dialog: bool = False, cseq: str = "{seq}",
         extra: tuple[str, ...] = (), length: str | None = None, **replace: str | None) -> SipCase:
    lines = _headers(method, transport, in_dialog, cseq, **replace) + list(extra)
    if body:
        lines.append("Content-Type: application/sdp" if method != "INFO" else "Content-Type: application/dtmf-relay")
    lines.append(f"Content-Length: {len(body.encode()) if length is None else length}")
    return SipCase(lines, body, transport=transport, in_dialog=in_dialog)


SIP_CORPUS: list[SipCase] = [
    _sip("INVITE", AUDIO_SDP),                                       # a plain call: answered, ACKed, hung up
    _sip("OPTIONS"),
    # TCP replies go back on the request's connection when its Via is unreadable or names another port
    _sip("OPTIONS", transport="tcp", Via="garbage"),
    _sip("OPTIONS", transport="tcp", Via="SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK{branch}"),
    _sip("INVITE", AUDIO_SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP6 ::1")),    # IPv6 c= on an IPv4 gateway
    _sip("INVITE", AUDIO_SDP, transport="tcp"),                      # over TCP: replies on the connection
    _sip("INVITE", AUDIO_SDP, Via=None, Max_Forwards="abc"),         # no Via and a bad Max-Forwards: dropped
    _sip("INVITE", AUDIO_SDP, Via=None),
    _sip("INFO", "Signal=5\r\nDuration=160\r\n", in_dialog=True, cseq="4294967296"),  # CSeq beyond 32 bits
    _sip("INFO", "Signal=5\r\nDuration=160\r\n", in_dialog=True, cseq="1"),            # CSeq going backwards
    _sip("INVITE", AUDIO_SDP, in_dialog=True, cseq="0"),
    # a refused message (bad CSeq) whose routing header holds a bare CR
    _sip("INVITE", AUDIO_SDP, cseq="abc", Via="SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{branch}\r;rport"),
    _sip("OPTIONS", Via="SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{branch};rport", Max_Forwards="0"),
    _sip("INVITE", AUDIO_SDP, Max_Forwards="99999999999999999999"),
    _sip("INVITE", AUDIO_SDP, extra=("Require: frobnicate, timer",)),
    _sip("INVITE", AUDIO_SDP, extra=("Session-Expires: 30;refresher=uac", "Min-SE: -5")),
    _sip("INVITE", AUDIO_SDP, extra=("User-Agent: " + "x" * 3000,)),  # too large for a datagram reply
    _sip("INVITE", AUDIO_SDP.replace("RTP/AVP 8 0 101", "RTP/AVP 18")),   # no codec in common
    _sip("INVITE", AUDIO_SDP, length="99999999"),                    # Content-Length far beyond the body
    _sip("INVITE", AUDIO_SDP, transport="tcp", length="99999999"),   # ... over TCP: waits, then the caller goes
    _sip("INVITE", AUDIO_SDP, length="-1"),
    _sip("INVITE", AUDIO_SDP[:40]),
    _sip("INVITE", "", Content_Type="application/sdp"),
    _sip("CANCEL", cseq="1"),                                        # nothing to cancel
    _sip("ACK", cseq="1"),                                           # no such dialog
    _sip("BYE", To="<sip:bot@127.0.0.1:{gw}>;tag=nosuchdialog"),
    _sip("UPDATE", AUDIO_SDP, in_dialog=True),
    _sip("INVITE", AUDIO_SDP.replace("a=sendrecv", "a=inactive"), in_dialog=True),     # re-INVITE on hold
    _sip("REFER", in_dialog=True),                                   # without Refer-To
    _sip("BYE", in_dialog=True),                                     # ends the live call; the next sets one up
    _sip("INFO", "Signal=\u4e94", in_dialog=True),
    _sip("REGISTER"), _sip("SUBSCRIBE", extra=("Event: refer",)), _sip("MESSAGE"), _sip("FOO"),
    SipCase([line.replace("SIP/2.0", "SIP/3.0", 1) if i == 0 else line
             for i, line in enumerate(_headers("OPTIONS"))] + ["Content-Length: 0"], ""),
    SipCase(["INVITE sip:bot@127.0.0.1:{gw} SIP/2.0", "v: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{branch};rport",
             "f: <sip:a@127.0.0.1:{me}>;tag={ftag}", "t: <sip:bot@127.0.0.1:{gw}>", "i: {cid}", "CSeq: 1 INVITE",
             "m: <sip:a@127.0.0.1:{me}>", "X-Fold: a\r\n b\r\n\tc", "c: application/sdp",
             f"l: {len(AUDIO_SDP)}"], AUDIO_SDP),                    # compact and folded headers
    SipCase(_headers("INVITE") + ["Content-Length: 0"], "", eol="\n"),  # bare LF line ends
    SipCase([], "", raw=b""),
    SipCase([], "", raw=b"\r\n\r\n"),
    SipCase([], "", raw=b"\x00\xff" * 300),
    SipCase([], "", transport="tcp", raw=b"INVITE sip:bot@127.0.0.1 SIP/2.0\r\nContent-Length: 5\r\n\r\n"),
]

# --- HTTP -----------------------------------------------------------------------------------------------------
JSON = {"content-type": "application/json", "origin": "{origin}"}
DEEP_LIST = b"[" * 5000 + b"]" * 5000
DEEP_DICT = b'{"a":' * 3000 + b"1" + b"}" * 3000


def _http(method: str, path: str, body: bytes | None = None, auth: str = "none", **headers: str) -> HttpCase:
    return HttpCase(method, path, {**JSON, **{k.replace("_", "-"): v for k, v in headers.items()}}, body, auth)


HTTP_CORPUS: list[HttpCase] = [
    # JSON nested too deep for json.loads (RecursionError was a 500 in these APIs)
    _http("POST", "/api/login", DEEP_LIST),
    _http("POST", "/api/login", DEEP_DICT),
    _http("POST", "/api/calls/webrtc", DEEP_LIST),
    _http("POST", "/api/calls/{live}/dtmf", DEEP_DICT),
    _http("POST", "/api/agent/presence", DEEP_LIST, "agent"),
    _http("POST", "/api/agent/calls/{live}/wrapup", DEEP_DICT, "agent"),
    _http("POST", "/api/login", b"\xff\xfe\x00"),
    _http("POST", "/api/login", b"\xef\xbb\xbf{}"),
    _http("POST", "/api/login", b'{"username": ["fz_agent"], "password": {"x": 1}}'),
    _http("POST", "/api/login", b"username=fz_agent&password=x", content_type="application/x-www-form-urlencoded"),
    _http("POST", "/api/calls/{live}/dtmf", b'{"digits": "' + b"1" * 100000 + b'"}'),
    _http("POST", "/api/calls/{live}/dtmf", b'{"digits": "1"'),
    _http("POST", "/api/calls/{live}/dtmf", b'{"digits": 5}', "supervisor"),
    _http("DELETE", "/api/calls/{live}", None, origin="http://evil.example"),
    _http("GET", "/api/calls/%2e%2e"),
    _http("GET", "/api/calls/" + "a" * 300, None, "agent"),
    _http("GET", "/static/../../etc/passwd"),
    _http("GET", "/api/me", None, cookie="ivr_session=eyJhIjoxfQ.x.y"),
    _http("GET", "/api/me", None, "agent", cookie='a=b; ivr_session="x"'),
    _http("POST", "/api/agent/presence", b'{"state": "\\u0000"}', "agent"),
    _http("POST", "/api/agent/presence", b'{"state": "available"}', "agent", content_type="text/plain"),
    _http("POST", "/api/agent/offers/nosuchcall/accept", b'{"via": "sip"}', "agent"),
    _http("POST", "/api/agent/offers//accept", b"{}", "agent"),
    _http("POST", "/api/agent/calls/{live}/hangup", b"{}", "agent"),
    _http("POST", "/api/agent/calls/{live}/wrapup", b'{"disposition": 5, "note": ["x"]}', "agent"),
    _http("GET", "/api/stats?from=2026-13-45&to=x", None, "supervisor"),
    _http("GET", "/api/stats?period=99999d&bucket=week", None, "supervisor"),
    _http("GET", "/api/stats/calls?limit=-1&offset=1e308", None, "supervisor"),
    _http("GET", "/api/stats/unrecognised?from=%00", None, "supervisor"),
    _http("GET", "/api/stats/export.csv?period=all&channel=" + "x" * 500, None, "supervisor"),
    _http("GET", "/api/stats/calls/{live}", None, "supervisor"),
    _http("GET", "/api/stats", None, "agent"),
    _http("POST", "/api/logout", b"--x\r\nContent-Disposition: form-data\r\n\r\n--x--",
          content_type="multipart/form-data; boundary=x"),
    _http("POST", "/login?next=//evil.example", b"username=fz_agent&password=x&next=//evil.example",
          content_type="application/x-www-form-urlencoded"),
    _http("HEAD", "/metrics"),
    _http("OPTIONS", "/api/calls"),
    _http("GET", "/%ff"),
]

# --- WebRTC offers (bodies of POST /api/calls/webrtc) ---------------------------------------------------------
OFFER = BROWSER_OFFER.format(ufrag="fUzZ", pwd="fuzzfuzzfuzzfuzzfuzzfuzz", fp=FINGERPRINT, cand="")


def _offer(sdp: str, kind: str = "offer") -> dict:
    return {"type": kind, "sdp": sdp}


WEBRTC_CORPUS: list[dict | str] = [
    _offer(OFFER),                                                             # a browser's offer: answered
    _offer(OFFER.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 5")),          # BUNDLE names a missing mid
    _offer(OFFER.replace("a=mid:1", "a=mid:0")),                                # duplicate mids
    _offer(OFFER.replace(f"a=fingerprint:sha-256 {FINGERPRINT}\r\na=setup:actpass\r\na=mid:0",
                         "a=setup:actpass\r\na=mid:0")),                        # audio without a DTLS fingerprint
    _offer(OFFER.replace(f"a=fingerprint:sha-256 {FINGERPRINT}", "a=fingerprint:md5 AB")),
    _offer(OFFER.replace("a=ice-ufrag:fUzZ\r\n", "")),
    _offer(OFFER.replace("c=IN IP4 0.0.0.0", "c=IN IP4 224.0.0.1")),
    _offer(OFFER.replace("c=IN IP4 0.0.0.0", "c=IN IP6 ::", 1)),
    _offer(OFFER.replace("m=audio 9 UDP/TLS/RTP/SAVPF 111 9 0 8 110 126", "m=audio 9 UDP/TLS/RTP/SAVPF 18")),
    _offer(OFFER.replace("m=audio 9", "m=audio 0")),
    _offer(OFFER.replace("m=audio 9 UDP/TLS/RTP/SAVPF 111 9 0 8 110 126", "m=video 9 UDP/TLS/RTP/SAVPF 96")),
    _offer(OFFER.replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 opus/0/2")),
    _offer(OFFER.replace("a=sendrecv", "a=inactive")),
    _offer(OFFER.replace("\r\n", "\n")),
    _offer(OFFER + "a=candidate:x\r\n"),
    _offer(OFFER.split("m=application")[0]),                                    # no data channel
    _offer(OFFER.split("m=audio")[0]),                                          # no media at all
    _offer(OFFER, "answer"), _offer(OFFER, "OFFER"), _offer(OFFER, ""),
    _offer(""), _offer("v=0"), _offer("\x00" * 10), _offer("v=0\r\n" + "a=" + "x" * 100000 + "\r\n"),
    {"type": "offer", "sdp": None}, {"type": "offer", "sdp": 5}, {"type": "offer"}, {"sdp": OFFER},
    "", "[]", "null", '{"type": "offer", "sdp": "v=0"', DEEP_LIST.decode(), DEEP_DICT.decode(),
]

# --- SDP bodies (straight into the parsers) -------------------------------------------------------------------
SDP_CORPUS: list[str] = [
    AUDIO_SDP, OFFER, "", "v=0", "v=0\r\n", "\x00", AUDIO_SDP.replace("\r\n", "\n"),
    AUDIO_SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP6 ::1"), AUDIO_SDP.replace("c=IN IP4 127.0.0.1", "c=IN IP4"),
    AUDIO_SDP.replace("m=audio 40000", "m=audio 40000/2"), AUDIO_SDP.replace("m=audio 40000", "m=audio 99999"),
    AUDIO_SDP.replace("m=audio 40000", "m=audio -1"), AUDIO_SDP.replace("8 0 101", "101"),
    AUDIO_SDP.replace("8 0 101", "128"), AUDIO_SDP.replace("8 0 101", ""), AUDIO_SDP.replace("RTP/AVP", "RTP/SAVP"),
    AUDIO_SDP.replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:8 PCMA/0"), AUDIO_SDP + "a=" + "x" * 100000 + "\r\n",
    AUDIO_SDP + AUDIO_SDP.split("t=0 0\r\n")[1], AUDIO_SDP.replace("m=audio", "m=video"),
    AUDIO_SDP.split("m=audio")[0],
]

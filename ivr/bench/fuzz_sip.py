"""SIP fuzz target: generated messages over real UDP and TCP sockets to the running service's SIP gateway.

After every case an OPTIONS probe must be answered (else: a hang), an INVITE that got a provisional response
must get a final one, no response may be a 5xx other than the deliberate 503 (capacity), 505 and 513 (and the
500 RFC 3261 prescribes for an in-dialog request whose CSeq went backwards), and the log must stay free of
tracebacks. Calls the fuzz answers are ACKed and hung up at once; a long-lived call (``{cid}`` etc. of in-dialog
cases) is kept up for re-INVITE, INFO, BYE ... fuzzing and set up again when a case ends it.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from ivr.bench.fuzz_harness import Failure, LogWatch, short
from ivr.bench.fuzz_inputs import SipCase

HANG_S = 5.0
MAX_CSEQ = 2**32  # CSeq numbers are 32-bit unsigned
DRAIN_S = 45.0  # a call whose 200 OK was routed where nobody ACKs ends by Timer H (32 s), then tears down
ALLOWED_5XX = {503, 505, 513}
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
            "c": "content-type"}
CLEAN_SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             "m=audio {rtp} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
             "a=fmtp:101 0-16\r\na=sendrecv\r\n")


@dataclass
class Msg:
    """A SIP message as the fuzzer sees it (first header values only)."""

    status: int | None
    method: str
    headers: dict[str, str]
    raw: bytes

    @property
    def call_id(self) -> str:
        return self.headers.get("call-id", "")

    @property
    def cseq(self) -> tuple[int | None, str]:
        num, _, method = self.headers.get("cseq", "").partition(" ")
        return (int(num) if num.isdigit() else None), method.strip().upper()


def parse_msgs(buf: bytes) -> tuple[list[Msg], bytes]:
    """Split a byte stream into messages (Content-Length framing); returns (messages, leftover)."""
    out = []
    while b"\r\n\r\n" in buf:
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("utf-8", "replace").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            k = k.strip().lower()
            headers.setdefault(_COMPACT.get(k, k), v.strip())
        length = int(headers.get("content-length", "0") or 0) if headers.get("content-length", "0").isdigit() else 0
        if len(rest) < length:
            break
        first = lines[0].split(" ", 2)
        status = int(first[1]) if first[0] == "SIP/2.0" and len(first) > 1 and first[1].isdigit() else None
        out.append(Msg(status, "" if status else first[0], headers, head + b"\r\n\r\n" + rest[:length]))
        buf = rest[length:]
    return out, buf


@dataclass
class LiveCall:
    cid: str
    ftag: str
    ttag: str
    seq: int = 1
    record_id: str = ""
    max_sent: int = 1


@dataclass
class SipPeer:
    """A small SIP caller on loopback (blocking sockets) that sets up, keeps and ends calls on the gateway."""

    gw: int
    udp: socket.socket = field(init=False)
    rtp: socket.socket = field(init=False)
    live: LiveCall | None = None
    made: list[LiveCall] = field(default_factory=list)  # every call set up, all hung up by end_live()
    bye_answers: dict[str, list] = field(default_factory=dict)  # end_live(): the answers to each BYE
    _ids: itertools.count = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.me = self.udp.getsockname()[1]
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the bot's audio lands here, unread
        self.rtp.bind(("127.0.0.1", 0))
        self.rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

    def close(self) -> None:
        self.udp.close()
        self.rtp.close()

    def request(self, method: str, cid: str, ftag: str, seq: int, *, ttag: str = "", body: str = "",
                via_port: int | None = None, transport: str = "UDP", cseq_method: str | None = None) -> bytes:
        port = via_port or self.me
        lines = [f"{method} sip:bot@127.0.0.1:{self.gw} SIP/2.0",
                 f"Via: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK{next(self._ids)}x;rport",
                 f"From: <sip:fuzz@127.0.0.1:{port}>;tag={ftag}",
                 f"To: <sip:bot@127.0.0.1:{self.gw}>" + (f";tag={ttag}" if ttag else ""),
                 f"Call-ID: {cid}", f"CSeq: {seq} {cseq_method or method}", f"Contact: <sip:fuzz@127.0.0.1:{port}>",
                 "Max-Forwards: 70"]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def ack_and_bye(self, resp: Msg, send: Any) -> None:
        """ACK a 2xx to an INVITE (from ``resp``'s headers) and hang the call up."""
        num, _ = resp.cseq
        ttag = _tag(resp.headers.get("to", ""))
        ftag = _tag(resp.headers.get("from", "")) or "x"
        ack = self.request("ACK", resp.call_id, ftag, num or 1, ttag=ttag)
        send(_with_from(ack, resp.headers.get("from", "")))
        send(_with_from(self.request("BYE", resp.call_id, ftag, (num or 1) + 1, ttag=ttag),
                        resp.headers.get("from", "")))

    def answer_request(self, req: Msg, send: Any) -> None:
        """200 OK to a request from the gateway (BYE when a session ends, NOTIFY ...); ACK needs none."""
        if req.method == "ACK":
            return
        hdrs = re.split(rb"\r\n", req.raw.split(b"\r\n\r\n", 1)[0])[1:]
        keep = [h for h in hdrs if h.split(b":", 1)[0].strip().lower() in
                (b"via", b"v", b"from", b"f", b"to", b"t", b"call-id", b"i", b"cseq")]
        send(b"SIP/2.0 200 OK\r\n" + b"\r\n".join(keep) + b"\r\nContent-Length: 0\r\n\r\n")
        if self.live is not None and req.call_id == self.live.cid and req.method == "BYE":
            self.live = None

    def establish(self) -> LiveCall | None:
        """A clean call over UDP for in-dialog fuzzing; None if the gateway would not answer (e.g. busy)."""
        n = next(self._ids)
        cid, ftag = f"live-{n}", f"lf{n}"
        body = CLEAN_SDP.format(rtp=self.rtp.getsockname()[1])
        self.udp.sendto(self.request("INVITE", cid, ftag, 1, body=body), ("127.0.0.1", self.gw))
        deadline = time.monotonic() + HANG_S
        for msg in self.read([self.udp], deadline, lambda m: m.call_id == cid and (m.status or 0) >= 200):
            if msg.call_id == cid and msg.status == 200:
                live = LiveCall(cid, ftag, _tag(msg.headers.get("to", "")), 1)
                live.record_id = msg.headers.get("x-ivr-call-id", "")
                self.udp.sendto(self.request("ACK", cid, ftag, 1, ttag=live.ttag), ("127.0.0.1", self.gw))
                self.live = live
                self.made.append(live)
                return live
        return None

    def end_live(self) -> None:
        """BYE every call this peer set up (those already over answer 481)."""
        self.live = None
        for live in self.made:
            live.seq = min(max(live.seq, live.max_sent) + 1, MAX_CSEQ - 1)
            self.udp.sendto(self.request("BYE", live.cid, live.ftag, live.seq, ttag=live.ttag),
                            ("127.0.0.1", self.gw))
            got = self.read([self.udp], time.monotonic() + 2,
                            lambda m, c=live.cid: m.call_id == c and m.status is not None and m.cseq[1] == "BYE")
            self.bye_answers[live.cid] = [m.status for m in got if m.call_id == live.cid and m.cseq[1] == "BYE"]
        self.made.clear()

    def read(self, socks: list[socket.socket], deadline: float, stop: Any) -> list[Msg]:
        """Messages arriving on ``socks`` until ``stop(msg)`` is true for one or ``deadline``; answers the
        gateway's own requests on the way."""
        got: list[Msg] = []
        bufs: dict[socket.socket, bytes] = {s: b"" for s in socks}
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return got
            ready, _, _ = select.select(socks, [], [], remaining)
            for s in ready:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    socks = [x for x in socks if x is not s]
                    continue
                if s.type == socket.SOCK_DGRAM:
                    msgs, _ = parse_msgs(data if b"\r\n\r\n" in data else data + b"\r\n\r\n")
                else:
                    msgs, bufs[s] = parse_msgs(bufs[s] + data)
                for m in msgs:
                    got.append(m)
                    if m.status is None:
                        self.answer_request(m, lambda b, s=s: _send(s, b, self.gw))
                    if stop(m):
                        return got
            if not socks:
                return got


def _send(sock: socket.socket, data: bytes, gw: int) -> None:
    with contextlib.suppress(OSError):
        if sock.type == socket.SOCK_DGRAM:
            sock.sendto(data, ("127.0.0.1", gw))
        else:
            sock.sendall(data)


def _tag(value: str) -> str:
    m = re.search(r";\s*tag=([^;>\s,]+)", value)
    return m.group(1) if m else ""


def _with_from(req: bytes, from_value: str) -> bytes:
    """Our request with the dialog's exact From header (the fuzz case may have had an odd one)."""
    if not from_value:
        return req
    return re.sub(rb"\r\nFrom: [^\r\n]*", b"\r\nFrom: " + from_value.encode("utf-8", "replace"), req, count=1)


class SipTarget:
    """Each case: send the message (UDP or a fresh TCP connection), probe with OPTIONS, judge the answers."""

    name = "SIP messages (UDP+TCP, gateway)"

    def __init__(self, app: Any, watch: LogWatch) -> None:
        self.app = app
        self.gw_obj = app.state.sip
        self.peer = SipPeer(self.gw_obj.port)
        self.watch = watch
        self.n = 0
        self.statuses: dict[int, int] = {}

    def check(self, case: SipCase) -> Failure | None:
        self.n += 1
        n, peer = self.n, self.peer
        live = None
        if case.in_dialog:
            live = peer.live or peer.establish()
        conn = None
        if case.transport == "tcp":
            conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            conn.bind(("127.0.0.1", 0))
            conn.settimeout(HANG_S)
            try:
                conn.connect(("127.0.0.1", peer.gw))
            except OSError as e:
                conn.close()
                return Failure("crash", short(case), f"TCP connect refused: {e}")
            me = conn.getsockname()[1]
        else:
            me = peer.me
        if live is not None:
            live.seq += 1
            values = {"cid": live.cid, "ftag": live.ftag, "ttag": live.ttag, "seq": live.seq}
        else:
            values = {"cid": f"fz{n}", "ftag": f"f{n}", "ttag": f"t{n}", "seq": 1}
        data = case.render(me=me, gw=peer.gw, branch=f"b{n}", **values)
        cid = str(values["cid"])
        sock = conn or peer.udp
        _send(sock, data, peer.gw)
        first = data.split(b"\r\n", 1)[0].split(b" ", 1)[0].decode("utf-8", "replace").upper()
        sent_seq = _cseq_num(data)
        probe = f"probe-{n}"
        peer.udp.sendto(peer.request("OPTIONS", probe, "p", 1), ("127.0.0.1", peer.gw))
        deadline = time.monotonic() + HANG_S
        state = {"probe": False, "provisional": False, "final": None}

        def stop(m: Msg) -> bool:
            if m.call_id == probe and m.status == 200:
                state["probe"] = True
            elif m.call_id == cid and m.status is not None and m.cseq[1] == first:
                if m.status < 200:
                    state["provisional"] = True
                elif state["final"] is None:
                    state["final"] = m
            return bool(state["probe"]) and not (first == "INVITE" and state["provisional"] and not state["final"])

        msgs = peer.read([peer.udp] + ([conn] if conn else []), deadline, stop)
        if conn is not None and state["probe"]:  # a last look at the TCP connection (its replies race the probe)
            msgs += peer.read([conn], time.monotonic() + 0.02, lambda m: stop(m) and False)
            if first == "INVITE" and state["provisional"] and state["final"] is None:  # then wait for the final
                msgs += peer.read([conn], deadline, stop)
        failure = None
        prior = live.max_sent if live is not None else 0
        for m in msgs:
            if m.status is None:
                continue
            if m.call_id == cid:
                self.statuses[m.status] = self.statuses.get(m.status, 0) + 1
            if live is not None and m.call_id == live.cid and m.cseq[0] is not None and m.cseq[0] < MAX_CSEQ:
                live.max_sent = max(live.max_sent, m.cseq[0])
            if m.status >= 500 and m.status not in ALLOWED_5XX and failure is None:
                # RFC 3261 12.2.2: 500 for an in-dialog request whose CSeq is not above the last one (the
                # response echoes the request's CSeq)
                backwards = (live is not None and m.status == 500 and m.call_id == live.cid
                             and m.cseq[0] is not None and m.cseq[0] <= prior)
                if not backwards:
                    line = m.raw.split(b"\r\n", 1)[0].decode("utf-8", "replace")
                    failure = Failure("crash", short(case), f"answered {line}")
            if m.status == 200 and m.cseq[1] == "INVITE" and (live is None or m.call_id != live.cid):
                peer.ack_and_bye(m, lambda b, s=sock: _send(s, b, peer.gw))
            elif live is not None and m.call_id == live.cid and m.cseq[1] == "INVITE" and m.status >= 200:
                _send(peer.udp, peer.request("ACK", live.cid, live.ftag, m.cseq[0] or live.seq, ttag=live.ttag,
                                             cseq_method="ACK"), peer.gw)
            if live is not None and m.call_id == live.cid and m.status == 200 and m.cseq[1] == "BYE":
                peer.live = None
        if live is not None and sent_seq is not None and sent_seq < MAX_CSEQ:  # the gateway refuses larger ones
            live.max_sent = max(live.max_sent, sent_seq)
            live.seq = max(live.seq, sent_seq)
        if conn is not None:
            if state["final"] is not None and state["final"].status == 200:
                peer.read([conn], time.monotonic() + 1, lambda m: m.cseq[1] == "BYE" and m.status is not None)
            conn.close()
        errors = self.watch.take()
        if errors:
            return Failure("crash", short(case), "; ".join(errors[:3]))
        if not state["probe"]:
            return Failure("hang", short(case), f"OPTIONS probe unanswered for {HANG_S:.0f} s")
        if first == "INVITE" and state["provisional"] and state["final"] is None:
            return Failure("hang", short(case), f"INVITE got a provisional answer but no final one in {HANG_S:.0f} s")
        return failure

    def after(self) -> list[Failure]:
        return sip_alive(self.peer, self.gw_obj, self.watch)


def sip_alive(peer: SipPeer, gw: Any, watch: LogWatch) -> list[Failure]:
    """The gateway still answers OPTIONS over UDP and TCP, and the calls of the run are all closed."""
    failures = []
    peer.end_live()
    peer.udp.sendto(peer.request("OPTIONS", "final-udp", "p", 1), ("127.0.0.1", peer.gw))
    got = peer.read([peer.udp], time.monotonic() + HANG_S, lambda m: m.call_id == "final-udp" and m.status == 200)
    if not any(m.call_id == "final-udp" and m.status == 200 for m in got):
        failures.append(Failure("hang", "after the run", "OPTIONS over UDP unanswered"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(HANG_S)
        try:
            s.connect(("127.0.0.1", peer.gw))
            s.sendall(peer.request("OPTIONS", "final-tcp", "p", 1, via_port=s.getsockname()[1], transport="TCP"))
            got = peer.read([s], time.monotonic() + HANG_S, lambda m: m.call_id == "final-tcp")
        except OSError:
            got = []
    if not any(m.call_id == "final-tcp" and m.status == 200 for m in got):
        failures.append(Failure("hang", "after the run", "OPTIONS over TCP unanswered"))
    deadline = time.monotonic() + DRAIN_S
    while gw.open_calls and time.monotonic() < deadline:
        time.sleep(0.2)
    if gw.open_calls:
        which = [f"{cid} {port.info.extra.get('transport')}" for cid, port in list(gw.calls.items())]
        failures.append(Failure("crash", "after the run", f"{gw.open_calls} call(s) still open {DRAIN_S:.0f} s after "
                                                          f"the run: {which} ringing {list(gw._ringing)} BYE answers "
                                                          f"{ {k: v for k, v in peer.bye_answers.items() if v != [200]} }"))
    failures += [Failure("crash", "after the run", e) for e in watch.take()]
    peer.close()
    return failures


def _cseq_num(data: bytes) -> int | None:
    m = re.search(rb"\r?\n(?:CSeq|cseq|CSEQ)\s*:\s*(\d+)", data)
    return int(m.group(1)) if m else None

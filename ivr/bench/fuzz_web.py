"""Fuzz targets for SDP parsing (in process), the HTTP JSON APIs and WebRTC offers (over real HTTP).

* SDP: :func:`ivr.telephony.sip.sdp.parse_offer` raises nothing but ``SdpError``; an accepted offer gets an
  answer that serialises and carries our port and the chosen codec; the WebRTC offer check in front of aiortc
  raises nothing but ``OfferError`` (anything else would be a 500 at POST /api/calls/webrtc).
* HTTP and WebRTC: no 5xx but the deliberate 503, no traceback in the log, an answer within the timeout, and
  ``/health`` still 200 afterwards. Calls a WebRTC offer opened are hung up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import httpx

from ivr.bench.fuzz_harness import AGENT, SUPERVISOR, Failure, LogWatch, short
from ivr.bench.fuzz_inputs import HttpCase

REQUEST_TIMEOUT_S = 10.0
SLOW_PARSE_S = 1.0


class SdpParseTarget:
    """The project's SDP offer parser and answer builder (SIP), and the WebRTC offer check (aiortc's parser)."""

    name = "SDP bodies (parse_offer + build_answer, WebRTC offer check)"

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}

    def check(self, text: str) -> Failure | None:
        from aiosipua import serialize_sdp

        from ivr.telephony.sip.sdp import SdpError, build_answer, parse_offer
        from ivr.telephony.webrtc.peer import OfferError, _check_offer

        t0 = time.perf_counter()
        try:
            offer = parse_offer(text)
        except SdpError as e:
            self.outcomes[f"sip {e.status}"] = self.outcomes.get(f"sip {e.status}", 0) + 1
            if e.status not in (400, 488):
                return Failure("crash", short(text), f"SdpError with status {e.status}")
            offer = None
        except Exception as e:
            return Failure("crash", short(text), f"parse_offer raised {type(e).__name__}: {e}")
        if offer is not None:
            self.outcomes["sip ok"] = self.outcomes.get("sip ok", 0) + 1
            try:
                answer = serialize_sdp(build_answer(offer, "127.0.0.1", 40000, 40001, version=2))
            except Exception as e:
                return Failure("crash", short(text), f"build_answer raised {type(e).__name__}: {e}")
            if "m=audio 40000 " not in answer or f" {offer.payload_type}" not in answer.split("m=audio", 1)[1]:
                return Failure("crash", short(text), f"answer lacks our port or codec: {answer!r}")
        try:
            _check_offer(text)
            self.outcomes["webrtc ok"] = self.outcomes.get("webrtc ok", 0) + 1
        except OfferError as e:
            self.outcomes[f"webrtc {e.status}"] = self.outcomes.get(f"webrtc {e.status}", 0) + 1
        except Exception as e:
            return Failure("crash", short(text), f"the WebRTC offer check raised {type(e).__name__}: {e} (a 500 "
                                                 "at POST /api/calls/webrtc)")
        if time.perf_counter() - t0 > SLOW_PARSE_S:
            return Failure("hang", short(text), f"parsing took {time.perf_counter() - t0:.1f} s")
        return None

    def after(self) -> list[Failure]:
        return []


class _HttpBase:
    """Shared by the HTTP and WebRTC targets: one keep-alive client, status/log judgement, /health after."""

    def __init__(self, url: str, app: Any, watch: LogWatch) -> None:
        self.url, self.app, self.watch = url, app, watch
        self.client = httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S, follow_redirects=False)
        self.statuses: dict[int, int] = {}

    def send(self, case: Any, method: str, path: str, headers: dict[str, str], body: bytes | None
             ) -> tuple[httpx.Response | None, Failure | None]:
        self.client.cookies.clear()
        try:
            r = self.client.request(method, path, headers=headers, content=body)
        except httpx.TimeoutException:
            return None, Failure("hang", short(case), f"no answer in {REQUEST_TIMEOUT_S:.0f} s")
        except (httpx.RemoteProtocolError, httpx.ConnectError, httpx.ReadError) as e:
            return None, Failure("crash", short(case), f"connection failed: {type(e).__name__}: {e}")
        except (httpx.LocalProtocolError, httpx.InvalidURL, UnicodeEncodeError, ValueError):
            self.statuses[0] = self.statuses.get(0, 0) + 1  # the client itself refused to send it
            return None, None
        self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
        if r.status_code >= 500 and r.status_code != 503:
            return r, Failure("crash", short(case), f"{method} {path[:80]} -> {r.status_code} {r.text[:200]}")
        return r, None

    def judge(self, case: Any, failure: Failure | None) -> Failure | None:
        errors = self.watch.take()
        if errors and (failure is None or failure.kind != "hang"):
            return Failure("crash", short(case), "; ".join(errors[:3]))
        return failure

    def after(self) -> list[Failure]:
        failures = []
        try:
            r = httpx.get(self.url + "/health", timeout=REQUEST_TIMEOUT_S)
            if r.status_code != 200:
                failures.append(Failure("crash", "after the run", f"/health answered {r.status_code}"))
        except httpx.HTTPError as e:
            failures.append(Failure("hang", "after the run", f"/health unanswered: {e}"))
        failures += [Failure("crash", "after the run", e) for e in self.watch.take()]
        self.client.close()
        return failures

    def on_loop(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` (a plain function or a coroutine function) on the service's event loop."""
        loop = self.app.state.loop

        async def go() -> None:
            res = fn(*args)
            if asyncio.iscoroutine(res):
                await res

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(go(), loop).result(timeout=REQUEST_TIMEOUT_S)


class HttpTarget(_HttpBase):
    """Requests to the JSON APIs, logged out, as an agent or as a supervisor; ``{live}`` is a live SIP call."""

    name = "HTTP JSON APIs"

    def __init__(self, url: str, app: Any, watch: LogWatch) -> None:
        super().__init__(url, app, watch)
        from ivr.bench.fuzz_sip import SipPeer

        self.peer = SipPeer(app.state.sip.port) if app.state.sip is not None else None
        self.cookies = {"none": "", "agent": self._login(*AGENT), "supervisor": self._login(*SUPERVISOR)}

    def _login(self, user: str, password: str) -> str:
        r = httpx.post(self.url + "/api/login", json={"username": user, "password": password},
                       headers={"origin": self.url}, timeout=REQUEST_TIMEOUT_S)
        r.raise_for_status()
        return r.cookies.get("ivr_session", "")

    def _live_id(self) -> str:
        peer = self.peer
        if peer is None:
            return "nosuchcall"
        sessions = self.app.state.calls.sessions
        if peer.live is None or peer.live.record_id not in sessions:
            peer.live = None
            if peer.establish() is None:
                return "nosuchcall"
            for _ in range(50):  # the session registers just after the 200 OK
                if peer.live and peer.live.record_id in sessions:
                    break
                time.sleep(0.02)
        return peer.live.record_id if peer.live else "nosuchcall"

    def check(self, case: HttpCase) -> Failure | None:
        path = case.path
        if "{live}" in path:
            path = path.replace("{live}", self._live_id())
        headers = {k: v.replace("{origin}", self.url) for k, v in case.headers.items()}
        token = self.cookies.get(case.auth, "")
        if token:
            headers["cookie"] = f"ivr_session={token}" + (f"; {headers['cookie']}" if "cookie" in headers else "")
        _, failure = self.send(case, case.method, path, headers, case.body)
        return self.judge(case, failure)

    def after(self) -> list[Failure]:
        failures = super().after()
        if self.peer is not None:
            from ivr.bench.fuzz_sip import sip_alive

            failures += sip_alive(self.peer, self.app.state.sip, self.watch)
        return failures


class WebRtcTarget(_HttpBase):
    """POST /api/calls/webrtc with generated offers; an answered call is hung up at once."""

    name = "WebRTC offers (POST /api/calls/webrtc)"

    def check(self, case: dict | str) -> Failure | None:
        body = case.encode("utf-8", "surrogatepass") if isinstance(case, str) else \
            json.dumps(case).encode("utf-8", "surrogatepass")
        headers = {"content-type": "application/json", "origin": self.url}
        r, failure = self.send(case, "POST", "/api/calls/webrtc", headers, body)
        if r is not None and r.status_code == 200:
            call_id = ""
            with contextlib.suppress(ValueError, AttributeError):
                call_id = str(r.json().get("call_id", ""))
            if not call_id or "a=" not in r.json().get("sdp", ""):
                failure = failure or Failure("crash", short(case), f"200 without an answer: {r.text[:200]}")
            self.on_loop(self._end, call_id)
        return self.judge(case, failure)

    async def _end(self, call_id: str) -> None:
        """The caller goes away before ICE completes: hang up, close the peer connection."""
        calls = self.app.state.calls
        for _ in range(100):  # the session registers just after the answer went out
            if call_id in calls.sessions:
                break
            await asyncio.sleep(0.01)
        session = calls.sessions.get(call_id)
        calls.hangup(call_id, "caller_hangup")
        if session is not None:
            with contextlib.suppress(Exception):
                await session.port.close()

    def after(self) -> list[Failure]:
        calls = self.app.state.calls
        deadline = time.monotonic() + 30
        while calls.active and time.monotonic() < deadline:
            time.sleep(0.2)
        failures = super().after()
        if calls.active:
            failures.append(Failure("crash", "after the run", f"{calls.active} WebRTC call(s) still active"))
        return failures

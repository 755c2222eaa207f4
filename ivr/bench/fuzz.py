"""`ivr bench fuzz`: property-based fuzzing of the service's inputs with Hypothesis; writes docs/benchmarks.md.

Targets (each against one real service started as ``ivr serve`` starts it, on loopback):

* ``sip``: SIP messages over real UDP and TCP sockets to the gateway (new calls and in-dialog requests);
* ``sdp``: SDP bodies straight into the project's offer parser and aiortc's parser (no server);
* ``http``: the JSON APIs (call API, logins, agent desk, statistics) logged out, as agent and as supervisor;
* ``webrtc``: offers to POST /api/calls/webrtc.

Per target it prints cases, crashes (5xx but the deliberate 503, a traceback in the log, the service gone),
hangs (no answer within the case's timeout) and cases/s. The test suite runs the same targets with a fixed corpus
of nasty cases and then 1,000 generated ones each, 2,000 for SDP (tests/test_fuzz_*.py, tests/fuzz_corpus.py);
needs the dev extras (``pip install -e .[dev]``: Hypothesis).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

TARGETS = ("sip", "sdp", "http", "webrtc")
DEFAULT_CASES = 10000
WEBRTC_MAX_CALLS = 300  # answered offers whose caller never connects linger until the session's connect timeout


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Warnings and up only while fuzzing (refused messages are logged at INFO, thousands of them)."""
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(old)


def run_target(name: str, cases: int, *, seed: int = 12, progress: Callable[[int], None] | None = None,
               corpus: Iterable[Any] = ()) -> Any:
    """Fuzz one target with the fixed cases of ``corpus`` (if any) and ``cases`` generated ones; returns its
    :class:`~ivr.bench.fuzz_harness.FuzzResult`."""
    from ivr.bench import fuzz_inputs as fi
    from ivr.bench.fuzz_harness import LogWatch, run_cases, serve_app

    if name == "sdp":
        from ivr.bench.fuzz_web import SdpParseTarget

        with quiet_logs():
            return run_cases(SdpParseTarget(), fi.sdp_bodies(live=False), cases, seed_value=seed, progress=progress,
                             corpus=corpus)
    with quiet_logs(), LogWatch() as watch, serve_app(sip=name in ("sip", "http"),
                                                      max_calls=WEBRTC_MAX_CALLS if name == "webrtc" else 8) as (url, app):
        watch.take()  # start-up noise is not the fuzz's
        if name == "sip":
            from ivr.bench.fuzz_sip import SipTarget

            target, strategy = SipTarget(app, watch), fi.sip_messages()
        elif name == "http":
            from ivr.bench.fuzz_web import HttpTarget

            target, strategy = HttpTarget(url, app, watch), fi.http_requests()
        elif name == "webrtc":
            from ivr.bench.fuzz_web import WebRtcTarget

            target, strategy = WebRtcTarget(url, app, watch), fi.webrtc_offers()
        else:
            raise ValueError(f"unknown fuzz target {name!r} (choose from {', '.join(TARGETS)})")
        return run_cases(target, strategy, cases, seed_value=seed, progress=progress, corpus=corpus)

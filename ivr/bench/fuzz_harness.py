"""Fuzz harness: the real app in a thread, a log watch for tracebacks, and a Hypothesis runner that counts.

A target has ``check(case) -> Failure | None`` (one case, bounded by its own timeouts) and ``after() ->
list[Failure]`` (the service still answers once the run is over). :func:`run_cases` feeds it a fixed corpus of
cases (if given) and then ``cases`` examples of a strategy with a fixed seed and no example database, so a run is
reproducible, and counts crashes and hangs instead of stopping at the first one (the first few failures are kept
with the case that caused them).
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from ivr.bench.ports import reserve_port

log = logging.getLogger(__name__)

KEEP_FAILURES = 5
AGENT = ("fz_agent", "fuzz-agent-pass-1")
SUPERVISOR = ("fz_sup", "fuzz-super-pass-1")


@dataclass
class Failure:
    """A crash (5xx, traceback in the log, an exception where none may be) or a hang (no answer in time)."""

    kind: str
    case: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}\n    case: {self.case}"


@dataclass
class FuzzResult:
    target: str
    cases: int = 0
    crashes: int = 0
    hangs: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)  # failures by their detail with numbers blanked
    seen: dict = field(default_factory=dict)  # what the target answered (status codes, parser verdicts)

    @property
    def rate(self) -> float:
        return self.cases / self.seconds if self.seconds else 0.0

    def add(self, failure: Failure | None) -> None:
        if failure is None:
            return
        if failure.kind == "hang":
            self.hangs += 1
        else:
            self.crashes += 1
        sig = re.sub(r"\d+", "N", failure.detail)[:90]
        self.kinds[sig] += 1
        if self.kinds[sig] == 1 and len(self.failures) < KEEP_FAILURES:
            self.failures.append(failure)

    def summary(self) -> str:
        head = (f"{self.target}: {self.cases} cases, {self.crashes} crashes, {self.hangs} hangs, "
                f"{self.rate:.0f} cases/s")
        kinds = [f"  {n} x {sig}" for sig, n in self.kinds.most_common()]
        return "\n".join([head, *kinds, *(f"  {f}" for f in self.failures)])


class Target(Protocol):
    name: str

    def check(self, case: Any) -> Failure | None: ...

    def after(self) -> list[Failure]: ...


def short(case: Any, limit: int = 600) -> str:
    text = repr(case)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


class LogWatch(logging.Handler):
    """Collects log records that carry a traceback or are errors (from any thread) while installed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._records: list[str] = []
        self._lock = threading.Lock()
        self._old_hook = threading.excepthook

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is None and record.levelno < logging.ERROR:
            return
        text = f"{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f" [{type(exc).__name__}: {str(exc)[:200]}]"
        with self._lock:
            self._records.append(text)

    def take(self) -> list[str]:
        with self._lock:
            out, self._records = self._records, []
        return out

    def __enter__(self) -> LogWatch:
        logging.getLogger().addHandler(self)

        def hook(args: threading.ExceptHookArgs) -> None:
            with self._lock:
                self._records.append(f"thread {args.thread.name if args.thread else '?'}: "
                                     f"{args.exc_type.__name__}: {args.exc_value}")

        threading.excepthook = hook
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)
        threading.excepthook = self._old_hook


@contextlib.contextmanager
def serve_app(*, sip: bool = False, max_calls: int = 8, data_dir: Path | None = None) -> Iterator[tuple[str, Any]]:
    """The real service (``create_app`` under uvicorn, lifespan on: the SIP gateway starts as in ``ivr serve``)
    on loopback in a background thread, with an agent and a supervisor account. Yields (base_url, app)."""
    import httpx
    import uvicorn

    from ivr.config import load_settings
    from ivr.services.agents import AccountStore
    from ivr.services.migrate import ensure_schema
    from ivr.web.app import create_app

    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ivr-fuzz-")))
        port = reserve_port()  # held by this process: a parallel run cannot take it between here and the bind
        settings = load_settings({"data_dir": str(data_dir), "host": "127.0.0.1", "port": port,
                                  "sip_port": reserve_port() if sip else 0, "max_calls": max_calls})
        ensure_schema(settings.database_url)
        store = AccountStore(settings.database_url)
        store.add(AGENT[0], role="agent", password=AGENT[1])
        store.add(SUPERVISOR[0], role="supervisor", password=SUPERVISOR[1])
        app = create_app(settings, shutdown_grace_s=3.0)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="on"))
        thread = threading.Thread(target=server.run, name=f"fuzz-uvicorn-{port}", daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=1).status_code in (200, 503):
                    break
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.1)
        try:
            yield url, app
        finally:
            server.should_exit = True
            thread.join(timeout=60)


def run_cases(target: Target, strategy: st.SearchStrategy, cases: int, *, seed_value: int = 12,
              progress: Callable[[int], None] | None = None, corpus: Iterable[Any] = ()) -> FuzzResult:
    """Run each case of ``corpus`` (fixed cases: known nasty inputs), then ``cases`` examples of ``strategy``
    through ``target`` (then its ``after`` checks) and count."""
    result = FuzzResult(target.name)

    def check(case: Any) -> None:
        result.cases += 1
        try:
            result.add(target.check(case))
        except Exception as e:  # the harness itself must not stop the run; count it against the target
            result.add(Failure("crash", short(case), f"harness: {type(e).__name__}: {e}"))
        if progress is not None:
            progress(result.cases)

    @settings(max_examples=cases, deadline=None, database=None, derandomize=False, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @seed(seed_value)
    @given(strategy)
    def one(case: Any) -> None:
        check(case)

    t0 = time.perf_counter()
    for case in corpus:
        check(case)
    with warnings.catch_warnings():  # the service's threads use `random` while Hypothesis draws: not our strategy's
        warnings.filterwarnings("ignore", message=".*random.* module inside strategies")
        one()
    result.seconds = time.perf_counter() - t0
    for failure in target.after():
        result.add(failure)
    result.seen = dict(sorted((getattr(target, "statuses", None) or getattr(target, "outcomes", None) or {}).items(),
                              key=lambda kv: str(kv[0])))
    return result

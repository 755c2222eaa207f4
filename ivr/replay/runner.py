"""Run a suite of fixtures as calls: direct (in-process session), WebRTC or SIP; N calls at a time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ivr.call.parts import LISTENER_RATE
from ivr.config import Settings
from ivr.replay.caller import Pace, play_call
from ivr.replay.expect import check_call
from ivr.replay.loader import LoadedFixture
from ivr.replay.results import CallResult, LevelStats, SuiteResult
from ivr.replay.schema import ReplayUnavailable
from ivr.tables import percentiles

log = logging.getLogger(__name__)

Via = Literal["direct", "webrtc", "sip"]
AsrMode = Literal["reference", "real"]


@dataclass
class RunOptions:
    via: Via = "direct"
    asr: AsrMode = "reference"
    levels: list[int] = field(default_factory=lambda: [1])  # concurrency levels, run one after another
    server: str = "http://127.0.0.1:8080"  # for --via webrtc and sip (call records)
    sip: str = ""  # for --via sip: the URI to dial; empty = the server's host and the SIP port its /health names
    sip_codecs: list[str] = field(default_factory=lambda: ["PCMA", "PCMU"])  # offered, in order of preference
    seed: int = 7  # demo shop seed (direct)
    pace: Pace = field(default_factory=Pace)
    speed: float = 1.0  # recorded in the report; the loop itself is scaled by the caller of run_suite
    calls: int = 0  # calls per level; 0 = the suite size (or the level, when larger)


def model_hint(language: str) -> str:
    """'ivr models pull NAME' for the preferred small model of ``language`` (or a generic hint)."""
    from ivr.asr.models import REGISTRY

    for info in REGISTRY:
        if info.language.lower() == language.lower() and info.size == "small":
            return f"ivr models pull {info.name}"
    return "ivr models list"


class _DirectContext:
    """Shared by all direct calls of a run: settings, executor, demo shops, ASR engines."""

    def __init__(self, settings: Settings, opts: RunOptions) -> None:
        from ivr.replay.direct import DemoShops

        self.settings = settings
        self.opts = opts
        self.executor = ThreadPoolExecutor(max_workers=max(2, settings.asr_workers), thread_name_prefix="replay-dialog")
        self.shops = DemoShops(seed=opts.seed)
        self.engines: dict[str, Any] = {}  # language -> AsrEngine at the listener rate
        self.missing_models: dict[str, str] = {}

    async def prepare(self, fixtures: list[LoadedFixture]) -> None:
        models: dict[str, Any] = {}  # language -> model folder
        if self.opts.asr == "real":
            from ivr.asr.models import find_model

            for lang in dict.fromkeys(lf.fixture.language for lf in fixtures):
                model_dir = find_model(lang, self.settings)
                if model_dir is None:
                    self.missing_models[lang] = f"not run: no {lang} model installed ({model_hint(lang)})"
                else:
                    models[lang] = model_dir
            if not models:
                return  # no call will be played: no shop to seed, no dialogue to warm up
        await asyncio.to_thread(self.shops.prepare)
        await asyncio.get_running_loop().run_in_executor(self.executor, self._warm_dialog)
        if not models:
            return
        from ivr.asr.engine import AsrEngine

        for lang, model_dir in models.items():
            engine = AsrEngine(model_dir, LISTENER_RATE, language=lang, pool_size=self.settings.asr_pool_size,
                               max_workers=self.settings.asr_workers)
            await engine.warm_up()
            self.engines[lang] = engine

    def _warm_dialog(self) -> None:
        """Train the NLU and load the language pack before the first caller dials."""
        from ivr.call.ports import CallInfo
        from ivr.services.shop.store import SqlShop
        from ivr.wiring import new_dialog

        url = self.shops.new_url()
        try:
            new_dialog(SqlShop(url), CallInfo("warmup", "replay", language=self.settings.language),
                       asr_available=True).start()
        finally:
            self.shops.release(url)

    async def call(self, lf: LoadedFixture) -> CallResult:
        from ivr.asr.vad import VadOptions
        from ivr.replay.clock import now
        from ivr.replay.direct import CallerSide, ReferenceListener, new_line
        from ivr.wiring import replay_session

        fx = lf.fixture
        asr = self.opts.asr
        if asr == "real" and fx.language in self.missing_models:
            return CallResult(fixture=fx.name, path=str(lf.path), via="direct", asr=asr,
                              description=fx.description, error=self.missing_models[fx.language])
        vad = VadOptions.from_settings(self.settings)
        on_clip = None
        if asr == "reference":
            listener: Any = ReferenceListener(LISTENER_RATE, vad)
            on_clip = listener.expect
            mode = "reference"
        else:
            from ivr.asr.listener import Listener

            listener = Listener(LISTENER_RATE, vad, self.engines[fx.language])
            mode = "asr"
        line = new_line(fx.caller_id, lf.sample_rate, fx.language)
        url = self.shops.new_url()
        try:
            side = CallerSide(line, lambda ln: replay_session(
                ln, settings=self.settings, shop_url=url, listener=listener, asr_mode=mode, executor=self.executor,
                clock=now,
            ), listener)
            result, _report = await play_call(lf, side, pace=self.opts.pace, on_clip=on_clip)
        finally:
            await asyncio.to_thread(self.shops.release, url)
        result.via, result.asr = "direct", asr
        return result

    async def close(self) -> None:
        for engine in self.engines.values():
            await engine.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.shops.cleanup()


async def _make_context(settings: Settings, opts: RunOptions) -> Any:
    if opts.via == "direct":
        return _DirectContext(settings, opts)
    if opts.via == "webrtc":
        from ivr.replay.webrtc import WebRtcContext

        return WebRtcContext(settings, opts)
    if opts.via == "sip":
        from ivr.replay.sip import SipContext

        return SipContext(settings, opts)
    raise ReplayUnavailable(f"unknown --via {opts.via!r}: use direct, webrtc or sip")


async def run_suite(
    fixtures: list[LoadedFixture],
    settings: Settings,
    opts: RunOptions,
    *,
    target: str = "",
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[CallResult], None] | None = None,
) -> SuiteResult:
    """Play every fixture at each concurrency level; check expectations; collect latency percentiles."""
    suite = SuiteResult(via=opts.via, asr=opts.asr if opts.via == "direct" else "server", target=target, started_at=datetime.now(UTC).isoformat())
    if opts.speed != 1:
        suite.notes.append(f"played {opts.speed:g}x faster than real time: latencies are in call time and include "
                           f"processing stretched {opts.speed:g}x; use speed 1 for latency figures")
    if opts.via != "direct":
        suite.notes.append(f"via {opts.via} the server recognises speech with its own model (or runs keypad-only "
                           "without one); reference transcripts apply to --via direct only")
    ctx = await _make_context(settings, opts)
    t0 = time.perf_counter()
    try:
        await ctx.prepare(fixtures)
        for level in opts.levels:
            calls = [fixtures[i % len(fixtures)] for i in range(max(opts.calls or len(fixtures), level))]
            if on_start is not None:
                on_start(len(calls))
            sem = asyncio.Semaphore(level)

            async def one(lf: LoadedFixture, level: int = level, sem: asyncio.Semaphore = sem) -> CallResult:
                async with sem:
                    try:
                        res = await ctx.call(lf)
                    except Exception as e:  # one broken call must not hide the others' results
                        log.exception("replay of %s failed", lf.name)
                        res = CallResult(fixture=lf.name, path=str(lf.path), via=opts.via, asr=opts.asr,
                                         error=f"the call could not be played: {type(e).__name__}: {e}")
                    res.concurrency = level
                    if not res.error:
                        res.failures = check_call(lf.fixture, res)
                    if on_done is not None:
                        on_done(res)
                    return res

            t_level = time.perf_counter()
            results = await asyncio.gather(*(one(lf) for lf in calls))
            wall = time.perf_counter() - t_level
            suite.calls += results
            heard = [v for r in results for v in r.heard_latencies()]
            pipe = [v for r in results for v in r.pipeline_latencies()]
            suite.levels.append(LevelStats(level, len(results), sum(r.passed for r in results),
                                           percentiles(heard), percentiles(pipe), round(wall, 2)))
    finally:
        await ctx.close()
    suite.wall_s = time.perf_counter() - t0
    return suite

"""FastAPI application factory: the service's pages and APIs around one :class:`~ivr.call.manager.CallManager`.

Feature routers live in their own modules and are found by name (a module not built yet is skipped, like the
CLI's command groups). A router module exposes ``router`` (a FastAPI ``APIRouter``) and may expose
``setup(app)`` (called once at creation) and ``async startup(app)`` / ``async shutdown(app)`` hooks.
Everything a route needs is on ``app.state``: ``settings``, ``calls`` (the CallManager), ``templates``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ivr import __version__
from ivr.config import Settings

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent
# Feature routers in mount order: logins (/login), softphone + call API, agent desktop (/agent), dashboard (/dashboard).
DEFAULT_ROUTERS = ["ivr.web.auth", "ivr.web.phone", "ivr.web.agent", "ivr.web.dashboard"]


def load_router_modules(names: Sequence[str]) -> list[ModuleType]:
    """Import router modules by name; names whose module does not exist (yet) are skipped."""
    mods = []
    for name in names:
        try:
            mods.append(importlib.import_module(name))
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
    return mods


def create_app(settings: Settings, *, manager: Any = None, routers: Sequence[str | ModuleType] | None = None,
               shutdown_grace_s: float = 20.0) -> FastAPI:
    """The service app. ``manager``: an existing CallManager (tests); default: built at start-up from
    settings (embedded shop, installed model or DTMF mode). ``routers``: module names or modules."""
    mods = [m if isinstance(m, ModuleType) else None for m in (routers or DEFAULT_ROUTERS)]
    names = [m for m in (routers or DEFAULT_ROUTERS) if isinstance(m, str)]
    modules = [m for m in mods if m is not None] + load_router_modules(names)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.calls is None:
            from ivr.call.manager import CallManager

            app.state.calls = await asyncio.to_thread(CallManager.from_settings, settings)
        app.state.loop = asyncio.get_running_loop()
        await app.state.calls.start()
        for mod in modules:
            hook = getattr(mod, "startup", None)
            if hook is not None:
                await hook(app)
        log.info("ivr serving on http://%s:%s (softphone at /phone; %s)", settings.host, settings.port,
                 "speech recognition on" if app.state.calls.asr_available else "keypad (DTMF) mode")
        try:
            yield
        finally:
            for mod in reversed(modules):
                hook = getattr(mod, "shutdown", None)
                if hook is not None:
                    with contextlib.suppress(Exception):
                        await hook(app)
            await app.state.calls.shutdown(grace_s=shutdown_grace_s)

    app = FastAPI(title="ivr", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.calls = manager
    app.state.templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")

    @app.get("/health")
    def health(request: Request) -> JSONResponse:
        calls = request.app.state.calls
        body = {"status": "ok", "version": __version__}
        if calls is not None:
            body.update(active_calls=calls.active, max_calls=settings.max_calls, accepting=calls.accepting,
                        asr=calls.asr_available)
            if not calls.accepting:
                body["status"] = "shutting_down"
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        calls = request.app.state.calls
        data = generate_latest(calls.metrics.registry) if calls is not None else b""
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/phone")

    for mod in modules:
        setup = getattr(mod, "setup", None)
        if setup is not None:
            setup(app)
        router = getattr(mod, "router", None)
        if router is not None:
            app.include_router(router)
    return app

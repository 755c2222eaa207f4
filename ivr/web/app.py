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
import re
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
from ivr.web.security import bearer_ok
from ivr.web.security import install as install_guards

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent
# Feature routers in mount order: logins (/login), softphone + call API, agent desktop (/agent), dashboard (/dashboard),
# web chat (/chat), messaging webhooks (/api/webhook/...), the dashboard's cost view, the supervisor
# wall (/wall) and agent assist.
DEFAULT_ROUTERS = ["ivr.web.auth", "ivr.web.phone", "ivr.web.agent", "ivr.web.dashboard", "ivr.web.chat",
                   "ivr.web.webhook", "ivr.web.value", "ivr.web.wall", "ivr.web.assist",
                   "ivr.web.assist_actions", "ivr.web.supervise",
                   "ivr.cluster.web"]  # the state nodes of a cluster share (in process on one node)


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
        from ivr.wiring import call_manager, start_sip  # the one place a call is put together

        if app.state.calls is None:
            app.state.calls = await asyncio.to_thread(call_manager, settings)
        app.state.loop = asyncio.get_running_loop()
        await app.state.calls.start()
        for mod in modules:
            hook = getattr(mod, "startup", None)
            if hook is not None:
                await hook(app)
        if settings.sip_port:
            app.state.sip = await start_sip(settings, app.state.calls)
        log.info("ivr serving on http://%s:%s (softphone at /phone; %s%s)", settings.host, settings.port,
                 "speech recognition on" if app.state.calls.asr_available else "keypad (DTMF) mode",
                 f"; SIP on {settings.sip_host or settings.host}:{app.state.sip.port}" if app.state.sip is not None else "")
        try:
            yield
        finally:
            sip = app.state.sip
            if sip is not None:
                sip.stop_accepting()  # new INVITEs: 503 + Retry-After; calls on the line hear the goodbye below
            for mod in reversed(modules):
                hook = getattr(mod, "shutdown", None)
                if hook is not None:
                    with contextlib.suppress(Exception):
                        await hook(app)
            await app.state.calls.shutdown(grace_s=shutdown_grace_s)
            if sip is not None:
                await sip.stop()  # BYE to anything still up, then the sockets close

    docs = settings.http_docs  # the API explorer only when configured (it maps every route for a visitor)
    app = FastAPI(title="ivr", version=__version__, lifespan=lifespan, docs_url="/docs" if docs else None,
                  redoc_url="/redoc" if docs else None, openapi_url="/openapi.json" if docs else None)
    install_guards(app, settings)
    app.state.settings = settings
    app.state.calls = manager
    app.state.sip = None  # the SipGateway while serving with sip_port != 0
    app.state.templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    _page_texts(app.state.templates, settings.language)
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
        sip = request.app.state.sip
        body["sip"] = sip.status() if sip is not None else {"enabled": False}
        if sip is not None:
            body["sip"]["enabled"] = True
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        if settings.metrics_token and not bearer_ok(request, settings.metrics_token):
            return JSONResponse({"error": "metrics token required"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
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


def _page_texts(templates: Jinja2Templates, language: str) -> None:
    """Templates get their words from the language pack: ``{% set T = ui_page("agent") %}`` then ``{{ T.title }}``,
    and hand the same texts to their scripts as ``<script type="application/json" id="ui-text">`` (read by
    /static/ui_text.js: ``L("key", {field: ...})``); ``ui_lang`` is the page's ``lang`` attribute."""
    from ivr.lang import get_pack

    templates.env.globals["ui_page"] = lambda page: get_pack(language).ui_texts(page)
    templates.env.globals["ui_lang"] = language
    templates.env.filters["fill"] = fill_text


def fill_text(text: str, **fields: object) -> str:
    """``{{ T.who | fill(name=..., role=...) }}``: the named ``{placeholders}`` filled, anything else left as written
    (an operator's stray brace or unknown placeholder shows as typed instead of failing the page), like ui_text.js."""
    return re.sub(r"\{(\w+)\}", lambda m: str(fields[m.group(1)]) if m.group(1) in fields else m.group(0), text)

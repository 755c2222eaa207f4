"""Logins for the agent desktop and the dashboard: signed session cookies over the accounts in the database.

* ``GET /login`` (form), ``POST /login`` (form fields ``username``, ``password``, ``next``), ``POST /logout``;
  ``POST /api/login`` ``{"username", "password"}`` -> ``{"username", "display_name", "role"}`` and the cookie;
  ``POST /api/logout``; ``GET /api/me``.
* Pages and APIs declare who may use them with ``Depends(require_roles("agent", "supervisor"))``. Anonymous:
  APIs (paths under ``/api/``) answer 401 ``{"error": "login required"}``, pages redirect to ``/login?next=...``.
  Ready-made: ``DESK`` (agent, supervisor), ``DASHBOARD`` (supervisor, admin), ``ANY_LOGIN``.
  Logged in with the wrong role: 403 (JSON for APIs, a short page otherwise).
* The cookie ``ivr_session`` (HttpOnly, SameSite=Lax, 12 h) carries the account id and its session version,
  signed with the service secret (``secret_key``, or a random key kept in ``<data_dir>/secret_key``, mode 0600).
  A password change or a deactivated account ends the login at its next request.
* Five wrong passwords for one username within five minutes lock that username for five minutes.
* State-changing APIs take JSON bodies only, which a cross-site form cannot send without a CORS preflight; with
  SameSite=Lax this is the CSRF defence.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ivr.config import Settings
from ivr.services.agents import Account, AccountStore
from ivr.web.stores import app_store

log = logging.getLogger(__name__)
router = APIRouter()

COOKIE = "ivr_session"
MAX_AGE_S = 12 * 3600
LOCK_AFTER = 5
LOCK_WINDOW_S = 300.0
HOME = {"agent": "/agent", "supervisor": "/dashboard", "admin": "/dashboard"}


class LoginRequired(Exception):
    """Raised by :func:`require_roles` for an anonymous request."""


class WrongRole(Exception):
    """Raised by :func:`require_roles` for a logged-in account without the role."""

    def __init__(self, account: Account, roles: tuple[str, ...]) -> None:
        super().__init__(f"{account.role} may not use this; needs {' or '.join(roles)}")
        self.account = account
        self.roles = roles


def service_secret(settings: Settings) -> str:
    """``secret_key`` if set, else a random key made once and kept in the data dir (0600)."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret_key"
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key)
    return key


def accounts(request: Request) -> AccountStore:
    return app_store(request.app.state, "accounts", AccountStore)


def _serializer(request: Request) -> URLSafeTimedSerializer:
    ser = getattr(request.app.state, "session_serializer", None)
    if ser is None:
        ser = URLSafeTimedSerializer(service_secret(request.app.state.settings), salt="ivr-login")
        request.app.state.session_serializer = ser
    return ser


def current_account(request: Request) -> Account | None:
    """The logged-in account of this request, or None (blocking: FastAPI runs it in its thread pool)."""
    if hasattr(request.state, "account"):
        return request.state.account
    account = None
    raw = request.cookies.get(COOKIE)
    if raw:
        try:
            data = _serializer(request).loads(raw, max_age=MAX_AGE_S)
            acc = accounts(request).get(str(data.get("a", "")))
            if acc is not None and acc.active and acc.session_version == data.get("v"):
                account = acc
        except (BadSignature, AttributeError, TypeError):
            account = None
    request.state.account = account
    return account


def require_roles(*roles: str):
    """A FastAPI dependency: the account, if it has one of ``roles`` (see the module docstring)."""

    def dependency(request: Request) -> Account:
        acc = current_account(request)
        if acc is None:
            raise LoginRequired()
        if acc.role not in roles:
            raise WrongRole(acc, roles)
        return acc

    return Depends(dependency)


# Ready-made dependencies (use as a parameter default: ``acc: Account = DESK``).
DESK = require_roles("agent", "supervisor")  # the agent desktop: people who take calls
DASHBOARD = require_roles("supervisor", "admin")  # operators
ANY_LOGIN = require_roles("agent", "supervisor", "admin")


class _Throttle:
    def __init__(self) -> None:
        self._fails: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def locked(self, username: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._fails.get(username, []) if now - t < LOCK_WINDOW_S]
            self._fails[username] = recent
            return len(recent) >= LOCK_AFTER

    def failed(self, username: str) -> None:
        with self._lock:
            self._fails.setdefault(username, []).append(time.monotonic())

    def cleared(self, username: str) -> None:
        with self._lock:
            self._fails.pop(username, None)


def _throttle(request: Request) -> _Throttle:
    t = getattr(request.app.state, "login_throttle", None)
    if t is None:
        t = request.app.state.login_throttle = _Throttle()
    return t


def _login(request: Request, username: str, password: str) -> tuple[Account | None, str]:
    th = _throttle(request)
    if th.locked(username):
        return None, "尝试次数过多，请五分钟后再试"
    acc = accounts(request).authenticate(username, password)
    if acc is None:
        th.failed(username)
        log.info("login failed for %r", username[:64])
        return None, "用户名或密码不正确"
    th.cleared(username)
    log.info("login: %s (%s)", acc.username, acc.role)
    return acc, ""


def _set_cookie(request: Request, response: Response, acc: Account) -> None:
    token = _serializer(request).dumps({"a": acc.agent_id, "v": acc.session_version})
    response.set_cookie(COOKIE, token, max_age=MAX_AGE_S, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")


def _safe_next(nxt: str | None, acc: Account | None = None) -> str:
    if nxt and nxt.startswith("/") and not nxt.startswith("//") and "\\" not in nxt:
        return nxt
    return HOME.get(acc.role, "/phone") if acc else "/phone"


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, next: str = "") -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, "login.html", {"next": _safe_next(next), "error": ""})


@router.post("/login", include_in_schema=False)
def login_form(request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("")) -> Response:
    acc, err = _login(request, username.strip(), password)
    if acc is None:
        return request.app.state.templates.TemplateResponse(
            request, "login.html", {"next": _safe_next(next), "error": err, "username": username[:64]},
            status_code=401)
    resp = RedirectResponse(_safe_next(next, acc), status_code=303)
    _set_cookie(request, resp, acc)
    return resp


@router.post("/logout", include_in_schema=False)
def logout_form() -> Response:
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


@router.post("/api/login")
async def login_api(request: Request) -> JSONResponse:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("username"), str) or not isinstance(body.get("password"), str):
        return JSONResponse({"error": 'body must be {"username": "...", "password": "..."}'}, status_code=400)
    import asyncio

    acc, err = await asyncio.to_thread(_login, request, body["username"].strip(), body["password"])
    if acc is None:
        return JSONResponse({"error": err}, status_code=401)
    resp = JSONResponse({"username": acc.username, "display_name": acc.display_name, "role": acc.role,
                         "home": HOME.get(acc.role, "/phone")})
    _set_cookie(request, resp, acc)
    return resp


@router.post("/api/logout")
def logout_api() -> Response:
    resp = Response(status_code=204)
    resp.delete_cookie(COOKIE, path="/")
    return resp


@router.get("/api/me")
def me(acc: Account = ANY_LOGIN) -> JSONResponse:
    return JSONResponse({"agent_id": acc.agent_id, "username": acc.username, "display_name": acc.display_name,
                         "role": acc.role, "skills": list(acc.skills)})


def setup(app: FastAPI) -> None:
    """Turn the two auth exceptions into 401/403 answers or a redirect to the login page."""

    @app.exception_handler(LoginRequired)
    async def _anon(request: Request, _exc: LoginRequired) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "login required"}, status_code=401)
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(nxt)}", status_code=303)

    @app.exception_handler(WrongRole)
    async def _role(request: Request, exc: WrongRole) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc), "role": exc.account.role}, status_code=403)
        return HTMLResponse(f"<!doctype html><meta charset=utf-8><title>无权访问</title><p>您的账号（{exc.account.role}）"
                            f"无权访问此页面。</p><p><a href=\"{HOME.get(exc.account.role, '/phone')}\">返回</a></p>",
                            status_code=403)

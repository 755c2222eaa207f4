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
* Logging out ends every login of the account (its session version is bumped), so a copied cookie dies too.
* Five wrong passwords for one username within five minutes lock that username for five minutes (429 +
  Retry-After; attempts still being checked count, so parallel guesses cannot slip past the lock);
  ``login_ip_max_failures`` from one client address get 429 + Retry-After. Both in bounded memory
  (:mod:`ivr.web.throttle`). At most ``login_hash_concurrency`` password hashes run at once and
  ``login_hash_queue`` wait; more logins get 429 + Retry-After. Unknown names cost a hash too (no enumeration).
* CSRF: :mod:`ivr.web.security` refuses non-JSON bodies to ``/api/`` (415) and cross-site Origins (403); the
  cookie is SameSite=Lax on top.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ivr.channels.webhook import is_text
from ivr.config import Settings
from ivr.lang import get_pack
from ivr.services.agents import Account, AccountStore
from ivr.web.security import client_ip, is_https
from ivr.web.stores import app_store
from ivr.web.throttle import Busy, HashGate, Windows

log = logging.getLogger(__name__)
router = APIRouter()

COOKIE = "ivr_session"
MAX_AGE_S = 12 * 3600
LOCK_AFTER = 5
LOCK_WINDOW_S = 300.0
HOME = {"agent": "/agent", "supervisor": "/dashboard", "admin": "/dashboard"}
BUSY_RETRY_S = 2


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


def app_secret(request: Request) -> str:
    """The service secret, read once per app."""
    secret = getattr(request.app.state, "service_secret", None)
    if secret is None:
        secret = request.app.state.service_secret = service_secret(request.app.state.settings)
    return secret


def _serializer(request: Request) -> URLSafeTimedSerializer:
    ser = getattr(request.app.state, "session_serializer", None)
    if ser is None:
        ser = URLSafeTimedSerializer(app_secret(request), salt="ivr-login")
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


def session_valid(request: Request, acc: Account) -> bool:
    """``acc`` (as its login saw it) is still logged in: active, same session version (blocking)."""
    now = accounts(request).get(acc.agent_id)
    return now is not None and now.active and now.session_version == acc.session_version


def _guards(request: Request) -> tuple[Windows, Windows, HashGate]:
    st = request.app.state
    g = getattr(st, "login_guards", None)
    if g is None:
        settings = st.settings
        g = st.login_guards = (Windows(LOCK_AFTER, LOCK_WINDOW_S), Windows(settings.login_ip_max_failures, LOCK_WINDOW_S),
                               HashGate(settings.login_hash_concurrency, settings.login_hash_queue))
    return g


class LoginRefused(Exception):
    """A login that failed: ``status`` (401 or 429), a message for the person, and Retry-After seconds."""

    def __init__(self, status: int, message: str, retry_after: float = 0) -> None:
        super().__init__(message)
        self.status, self.retry_after = status, retry_after

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(max(1, round(self.retry_after)))} if self.status == 429 else None


def _text(request: Request, text_id: str, **fields: str) -> str:
    """A login/role text from the language pack of the configured language (``desk.yaml``)."""
    return get_pack(request.app.state.settings.language).desk_text(text_id, **fields)


async def _login(request: Request, username: str, password: str) -> Account:
    """The account, or :class:`LoginRefused` (wrong, locked, throttled or too busy to check)."""
    names, addresses, gate = _guards(request)
    name, ip = username[:64], client_ip(request.scope, request.app.state.settings)
    wait = addresses.blocked_for(ip)
    if wait:
        log.warning("login throttled for client %s", ip)
        raise LoginRefused(429, _text(request, "login.throttled"), wait)
    wait = names.blocked_for(name)
    if wait:
        raise LoginRefused(429, _text(request, "login.locked"), wait)
    names.begin(name)
    addresses.begin(ip)
    failed: bool | None = None
    try:
        async with gate.slot():
            acc = await asyncio.to_thread(accounts(request).authenticate, name, password)
        failed = acc is None
    except Busy:
        raise LoginRefused(429, _text(request, "login.busy"), BUSY_RETRY_S) from None
    finally:
        names.end(name, failed)
        addresses.end(ip, True if failed else None)
    if acc is None:
        log.info("login failed for %r", name)
        raise LoginRefused(401, _text(request, "login.wrong"))
    log.info("login: %s (%s)", acc.username, acc.role)
    return acc


def _set_cookie(request: Request, response: Response, acc: Account) -> None:
    token = _serializer(request).dumps({"a": acc.agent_id, "v": acc.session_version})
    response.set_cookie(COOKIE, token, max_age=MAX_AGE_S, httponly=True, samesite="lax", path="/",
                        secure=is_https(request.scope, request.app.state.settings))


def _safe_next(nxt: str | None, acc: Account | None = None) -> str:
    if nxt and nxt.startswith("/") and not nxt.startswith("//") and "\\" not in nxt:
        return nxt
    return HOME.get(acc.role, "/phone") if acc else "/phone"


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, next: str = "") -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, "login.html", {"next": _safe_next(next), "error": ""})


@router.post("/login", include_in_schema=False)
async def login_form(request: Request, username: str = Form(""), password: str = Form(""),
                     next: str = Form("")) -> Response:
    try:
        acc = await _login(request, username.strip(), password)
    except LoginRefused as e:
        return request.app.state.templates.TemplateResponse(
            request, "login.html", {"next": _safe_next(next), "error": str(e), "username": username[:64]},
            status_code=e.status, headers=e.headers())
    resp = RedirectResponse(_safe_next(next, acc), status_code=303)
    _set_cookie(request, resp, acc)
    return resp


async def _logout(request: Request, response: Response) -> Response:
    """End every login of the cookie's account (session version bumped) and close its event streams."""
    response.delete_cookie(COOKIE, path="/")
    acc = await asyncio.to_thread(current_account, request)
    if acc is not None:
        await asyncio.to_thread(end_logins, request.app.state.settings.database_url, acc.agent_id)
        desk = getattr(request.app.state.calls, "desk", None)
        if desk is not None:
            desk.publish(acc.agent_id, {"type": "session_check"})
        log.info("logout: %s", acc.username)
    return response


def end_logins(url: str, agent_id: str) -> None:
    """Bump the account's session version: every cookie issued before stops working."""
    from ivr.services.agents.tables import AgentRow
    from ivr.services.db import transaction

    with transaction(url) as s:
        row = s.get(AgentRow, agent_id)
        if row is not None:
            row.session_version = int(row.session_version) + 1


@router.post("/logout", include_in_schema=False)
async def logout_form(request: Request) -> Response:
    return await _logout(request, RedirectResponse("/login", status_code=303))


@router.post("/api/login")
async def login_api(request: Request) -> JSONResponse:
    try:
        body = await request.json()
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("username"), str) or not isinstance(body.get("password"), str) \
            or not is_text(body["username"] + body["password"]):
        return JSONResponse({"error": 'body must be {"username": "...", "password": "..."} (text)'}, status_code=400)
    try:
        acc = await _login(request, body["username"].strip(), body["password"])
    except LoginRefused as e:
        return JSONResponse({"error": str(e)}, status_code=e.status, headers=e.headers())
    resp = JSONResponse({"username": acc.username, "display_name": acc.display_name, "role": acc.role,
                         "home": HOME.get(acc.role, "/phone")})
    _set_cookie(request, resp, acc)
    return resp


@router.post("/api/logout")
async def logout_api(request: Request) -> Response:
    return await _logout(request, Response(status_code=204))


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
        title, text = _text(request, "login.forbidden_title"), _text(request, "login.forbidden", role=exc.account.role)
        return HTMLResponse(f"<!doctype html><meta charset=utf-8><title>{title}</title><p>{text}</p>"
                            f"<p><a href=\"{HOME.get(exc.account.role, '/phone')}\">{_text(request, 'login.back')}</a></p>",
                            status_code=403)

"""Agent accounts: username, role (agent, supervisor, admin), skills, argon2-hashed password.

Who may do what (enforced by ``ivr.web.auth``):

* ``agent`` and ``supervisor`` take calls on the agent desktop (``/agent``);
* ``supervisor`` and ``admin`` see the dashboard (``/dashboard``);
* ``admin`` manages the service but does not take calls (the desktop refuses it, so a call is never offered to
  an account nobody watches).

A password change bumps ``session_version``: every login made with the old password ends.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ivr.services.agents.tables import AgentRow
from ivr.services.db import transaction

ROLES = ("agent", "supervisor", "admin")
SKILLS = ("orders", "returns", "complaints", "vip", "zh-CN", "en-US")
MIN_PASSWORD = 8
_USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{2,64}$")
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name takes as long as a wrong password. Made at
    the first login check of a process (not at import: every `ivr agents` command and `ivr chat` would pay for an
    argon2 hash it never uses); every first check makes it, for a known name or not, so the order of names tried
    shows nothing."""
    return _hasher.hash("not-a-real-password")


class AccountError(ValueError):
    """A request about accounts cannot be done (one line for the operator)."""


@dataclass(frozen=True, slots=True)
class Account:
    agent_id: str
    username: str
    display_name: str
    role: str
    skills: tuple[str, ...] = field(default_factory=tuple)
    active: bool = True
    session_version: int = 1
    sip_uri: str = ""  # desk phone the bot dials on accept (empty: the browser desktop's own audio)

    @property
    def takes_calls(self) -> bool:
        return self.role in ("agent", "supervisor") and self.active


def _account(row: AgentRow) -> Account:
    return Account(row.agent_id, row.username, row.display_name or row.username, row.role,
                   tuple(row.skills or ()), bool(row.active), int(row.session_version), row.sip_uri or "")


def check_sip_uri(uri: str) -> str:
    """``sip:user@host[:port]`` (or empty); raises AccountError otherwise."""
    uri = (uri or "").strip()
    if uri and not re.match(r"^sips?:[^@\s]+@[A-Za-z0-9.\-\[\]:]+$", uri):
        raise AccountError("SIP URI must look like sip:1001@pbx.example.com:5060")
    return uri


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must have at least {MIN_PASSWORD} characters")


class AccountStore:
    """Accounts in the project database (SQLite or PostgreSQL). Blocking: call off the event loop."""

    def __init__(self, url: str) -> None:
        self.url = url

    def add(self, username: str, *, role: str = "agent", password: str, display_name: str = "",
            skills: list[str] | tuple[str, ...] = (), sip_uri: str = "") -> Account:
        """Create an account; AccountError for a bad name/role/password or a name already taken."""
        if not _USERNAME_RE.match(username or ""):
            raise AccountError("username: 2-64 letters, digits, '.', '_' or '-'")
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        check_password(password)
        bad = [s for s in skills if s not in SKILLS]
        if bad:
            raise AccountError(f"unknown skill {bad[0]!r}; known: {', '.join(SKILLS)}")
        sip_uri = check_sip_uri(sip_uri)
        now = datetime.now(UTC)
        row = AgentRow(agent_id="ag_" + secrets.token_hex(6), username=username, display_name=display_name or username,
                       role=role, password_hash=_hasher.hash(password), session_version=1, skills=list(skills),
                       active=True, created_at=now, password_changed_at=now, sip_uri=sip_uri)
        try:
            with transaction(self.url) as s:
                s.add(row)
        except IntegrityError:
            raise AccountError(f"an account named {username!r} exists already") from None
        return _account(row)

    def list(self) -> list[Account]:
        with transaction(self.url) as s:
            return [_account(r) for r in s.execute(select(AgentRow).order_by(AgentRow.username)).scalars()]

    def get(self, agent_id: str) -> Account | None:
        with transaction(self.url) as s:
            row = s.get(AgentRow, agent_id)
            return None if row is None else _account(row)

    def by_name(self, username: str) -> Account | None:
        with transaction(self.url) as s:
            row = s.execute(select(AgentRow).where(AgentRow.username == username)).scalar_one_or_none()
            return None if row is None else _account(row)

    def set_password(self, username: str, password: str) -> Account:
        """New password; ends every existing login of the account."""
        check_password(password)
        with transaction(self.url) as s:
            row = s.execute(select(AgentRow).where(AgentRow.username == username)).scalar_one_or_none()
            if row is None:
                raise AccountError(f"no account named {username!r}")
            row.password_hash = _hasher.hash(password)
            row.session_version = int(row.session_version) + 1
            row.password_changed_at = datetime.now(UTC)
            return _account(row)

    def set_sip_uri(self, username: str, sip_uri: str) -> Account:
        """Set (or clear, with "") the desk phone of an account."""
        sip_uri = check_sip_uri(sip_uri)
        with transaction(self.url) as s:
            row = s.execute(select(AgentRow).where(AgentRow.username == username)).scalar_one_or_none()
            if row is None:
                raise AccountError(f"no account named {username!r}")
            row.sip_uri = sip_uri
            return _account(row)

    def update(self, username: str, *, active: bool | None = None, role: str | None = None,
               skills: list[str] | tuple[str, ...] | None = None) -> Account:
        """Enable/disable, re-role or re-skill an account. Disabling or a new role ends its current logins."""
        if role is not None and role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        bad = [x for x in skills or () if x not in SKILLS]
        if bad:
            raise AccountError(f"unknown skill {bad[0]!r}; known: {', '.join(SKILLS)}")
        with transaction(self.url) as s:
            row = s.execute(select(AgentRow).where(AgentRow.username == username)).scalar_one_or_none()
            if row is None:
                raise AccountError(f"no account named {username!r}")
            if (active is False and row.active) or (role is not None and role != row.role):
                row.session_version = int(row.session_version) + 1
            if active is not None:
                row.active = active
            if role is not None:
                row.role = role
            if skills is not None:
                row.skills = list(skills)
            return _account(row)

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account if the password is right (and the account active), else None. Constant-ish time."""
        dummy = _dummy_hash()
        with transaction(self.url) as s:
            row = s.execute(select(AgentRow).where(AgentRow.username == username)).scalar_one_or_none()
            stored = row.password_hash if row is not None else dummy
            try:
                _hasher.verify(stored, password)
            except (VerificationError, InvalidHashError):
                return None
            if row is None or not row.active:
                return None
            if _hasher.check_needs_rehash(stored):
                row.password_hash = _hasher.hash(password)
            return _account(row)

"""Agents: accounts (hashed passwords, roles, skills) in the project database, and (in ``desk``) presence and
the ACD queue that hands calls from the bot to a human."""

from ivr.services.agents.accounts import ROLES, Account, AccountError, AccountStore

__all__ = ["ROLES", "Account", "AccountError", "AccountStore"]

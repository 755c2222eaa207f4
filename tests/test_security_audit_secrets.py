"""Security audit (secrets in the repository): deploy/cluster/node1.toml and node2.toml carry
``secret_key = "change-me-the-same-on-every-node"``, and ``ivr serve`` ran with it (and with any short key). That key
signs login cookies and record tokens (``Authorization: Bearer`` on ``GET /api/calls/{id}``: any call's transcript
for anyone who knows the call id, which SIP callers get in X-Ivr-Call-Id), the cluster's agent hand-over and keys
the caller hashes: a value published in the repository is no secret. ``ivr serve`` now refuses a placeholder or
a key under 32 characters in one line; an unset key still means a random one in the data dir."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

import pytest

from ivr.cli import UserError
from ivr.cli.serve_cmd import run
from ivr.config import secret_key_problem

NODE_TOML = Path(__file__).resolve().parents[1] / "deploy" / "cluster" / "node1.toml"


@pytest.mark.parametrize("key", ["change-me-the-same-on-every-node", "CHANGE-ME-" + "x" * 40, "changeme" * 5,
                                 "change-this-long-random-secret-please-do", "short", "a" * 31])
def test_placeholder_or_short_secret_keys_are_named(key):
    assert "secret_key" in secret_key_problem(key)


@pytest.mark.parametrize("make", [lambda: "", lambda: secrets.token_hex(32), lambda: secrets.token_urlsafe(32)],
                         ids=["unset", "hex", "urlsafe"])  # fixed ids: pytest-xdist workers must collect the same
def test_unset_or_long_random_secret_keys_pass(make):
    assert secret_key_problem(make()) == ""


def _args() -> argparse.Namespace:
    return argparse.Namespace(host=None, port=None, sip_port=None, max_calls=None, public_ip=None,
                              fetch_model=False, demo=False)


@pytest.mark.parametrize("how", ["env", "toml"])
def test_serve_refuses_the_published_cluster_secret(monkeypatch, tmp_path, how):
    monkeypatch.setenv("IVR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IVR_SIP_PORT", "0")
    if how == "env":
        monkeypatch.setenv("IVR_SECRET_KEY", "change-me-the-same-on-every-node")
    else:  # the node file as shipped (its database and Redis are never reached: the check comes first)
        monkeypatch.setenv("IVR_CONFIG", str(NODE_TOML))
    with pytest.raises(UserError, match="secret_key"):
        run(_args())
    assert not (tmp_path / "data" / "ivr.db").exists()

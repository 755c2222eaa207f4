"""The cluster's deployment files (deploy/cluster/) agree with each other and with the engines that read them:
each node's toml is a valid configuration with the shared database, Redis and secret; Kamailio's dispatcher list and
HAProxy's default servers name exactly those nodes; Kamailio and HAProxy accept their files."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ivr.config import load_settings

CLUSTER = Path(__file__).resolve().parents[1] / "deploy" / "cluster"


def _nodes(monkeypatch):
    out = []
    for name in ("node1", "node2"):
        monkeypatch.setenv("IVR_CONFIG", str(CLUSTER / f"{name}.toml"))
        out.append(load_settings())
    return out


def test_node_configs_share_state_and_keep_their_own_ports(monkeypatch):
    n1, n2 = _nodes(monkeypatch)
    assert (n1.node_name, n2.node_name) == ("node1", "node2")
    for shared in ("db_url", "redis_url", "secret_key"):
        assert getattr(n1, shared) == getattr(n2, shared) != "", shared
    assert n1.db_url.startswith("postgresql+psycopg://")
    assert len({n1.port, n2.port, n1.sip_port, n2.sip_port}) == 4
    assert n1.rtp_port_max < n2.rtp_port_min or n2.rtp_port_max < n1.rtp_port_min


def test_kamailio_and_haproxy_name_the_nodes_and_accept_their_files(monkeypatch, tmp_path):
    n1, n2 = _nodes(monkeypatch)
    listed = re.findall(r"^1 sip:([\d.]+):(\d+)", (CLUSTER / "dispatcher.list").read_text(), re.M)
    assert listed == [(n1.host, str(n1.sip_port)), (n2.host, str(n2.sip_port))]
    defaults = dict(re.findall(r"presetenv (IVR_NODE\d_HTTP) (\S+)", (CLUSTER / "haproxy.cfg").read_text()))
    assert defaults == {"IVR_NODE1_HTTP": f"{n1.host}:{n1.port}", "IVR_NODE2_HTTP": f"{n2.host}:{n2.port}"}
    r = subprocess.run(["kamailio", "-c", "-f", str(CLUSTER / "kamailio.cfg"), "-A",
                        f'DS_LIST="{CLUSTER / "dispatcher.list"}"'], capture_output=True, text=True, timeout=60,
                       cwd=tmp_path)
    assert r.returncode == 0 and "config file ok" in (r.stdout + r.stderr).lower(), r.stderr[-2000:]
    r = subprocess.run(["haproxy", "-c", "-f", str(CLUSTER / "haproxy.cfg")], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr

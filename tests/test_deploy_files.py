"""The deployment files in deploy/ stay true to the code: the example ivr.toml is exactly what ivr/config.py's
Settings generate (every setting, its default) and loads back to those defaults; the systemd unit starts the
installed `ivr serve` with that file."""

from __future__ import annotations

import configparser
import os
import tomllib
from pathlib import Path

from ivr.config import Settings, load_settings
from ivr.config_example import DEPLOY_VALUES, example_toml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_example_toml_is_generated_from_settings():
    committed = (DEPLOY / "ivr.toml").read_text(encoding="utf-8")
    assert committed == example_toml(), (
        "deploy/ivr.toml is out of date with ivr/config.py: run `python -m ivr.config_example > deploy/ivr.toml`")


def test_example_toml_has_every_setting_with_its_default(monkeypatch):
    doc = tomllib.loads((DEPLOY / "ivr.toml").read_text(encoding="utf-8"))
    keys = {k for table in doc.values() for k in table}
    text = (DEPLOY / "ivr.toml").read_text(encoding="utf-8")
    unset = {name for name in Settings.model_fields if f"# {name} = " in text}  # no TOML for "not set" (None)
    assert keys | unset == set(Settings.model_fields)
    for var in [v for v in os.environ if v.startswith("IVR_")]:  # the suite's own IVR_* settings
        monkeypatch.delenv(var)
    defaults = load_settings()
    monkeypatch.setenv("IVR_CONFIG", str(DEPLOY / "ivr.toml"))
    loaded = load_settings()
    differ = {n for n in Settings.model_fields if getattr(loaded, n) != getattr(defaults, n)}
    assert differ == set(DEPLOY_VALUES)
    assert str(loaded.data_dir) == "/var/lib/ivr"


def test_systemd_unit_runs_ivr_serve_with_the_example_config():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "ivr.service")
    svc = unit["Service"]
    assert svc["ExecStart"].split()[1:] == ["serve"] and svc["ExecStart"].endswith("/bin/ivr serve")
    lines = [line.strip() for line in (DEPLOY / "ivr.service").read_text().splitlines()]
    assert "Environment=IVR_CONFIG=/etc/ivr/ivr.toml" in lines  # (configparser keeps only the last Environment=)
    assert svc["User"] == "ivr" and svc["ReadWritePaths"] == DEPLOY_VALUES["data_dir"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_ice_and_port_settings_are_validated_with_one_clear_line(monkeypatch):
    import pytest

    from ivr.config import ConfigError
    from ivr.telephony.webrtc.ice import ice_config

    monkeypatch.setenv("IVR_ICE_SERVERS", '[{"urls": "http://turn.example"}]')
    with pytest.raises(ConfigError, match="ice_servers.*(IVR_ICE_SERVERS).*stun:, turn:"):
        load_settings()
    monkeypatch.setenv("IVR_ICE_SERVERS", '[{"urls": ["stun:s.example:3478"]}, '
                                          '{"urls": "turn:t.example:3478", "username": "u", "credential": "p"}]')
    s = load_settings()
    cfg = ice_config(s.model_copy(update={"turn_secret": "x"}))  # static credentials are kept as given
    assert cfg == {"iceServers": [{"urls": ["stun:s.example:3478"]},
                                  {"urls": "turn:t.example:3478", "username": "u", "credential": "p"}],
                   "iceTransportPolicy": "all"}
    with pytest.raises(ConfigError, match="rtp_port_max.*set both"):
        load_settings({"rtp_port_min": 40000})
    with pytest.raises(ConfigError, match="rtp_port_max.*set both"):
        load_settings({"rtp_port_min": 41000, "rtp_port_max": 40000})
    assert load_settings({"rtp_port_min": 40000, "rtp_port_max": 40999}).rtp_port_max == 40999

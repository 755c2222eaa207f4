"""Config validation, privacy masking, logging with call ids."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.config import ConfigError, load_settings
from ivr.log import call_id_var, setup_logging
from ivr.privacy import mask_address, mask_name, mask_phone, mask_text


def test_defaults_and_env(monkeypatch):
    s = load_settings()
    assert s.port == 8080 and s.vad_trailing_silence_ms == 500 and s.database_url.startswith("sqlite:///")
    monkeypatch.setenv("IVR_PORT", "9090")
    assert load_settings().port == 9090


def test_toml_then_env_then_override(tmp_path, monkeypatch):
    cfg = tmp_path / "ivr.toml"
    cfg.write_text("[server]\nport = 7000\nmax_calls = 3\n")
    monkeypatch.setenv("IVR_CONFIG", str(cfg))
    s = load_settings()
    assert (s.port, s.max_calls) == (7000, 3)
    monkeypatch.setenv("IVR_MAX_CALLS", "5")
    assert load_settings().max_calls == 5
    assert load_settings({"max_calls": 9}).max_calls == 9


@pytest.mark.parametrize(
    "env,value,needle",
    [("IVR_PORT", "eighty", "'port'"), ("IVR_VAD_AGGRESSIVENESS", "7", "vad_aggressiveness"), ("IVR_LANGUAGE", "zh", "language")],
)
def test_bad_values_give_one_clear_line(monkeypatch, env, value, needle):
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as e:
        load_settings()
    msg = str(e.value)
    assert needle in msg and env in msg and "\n" not in msg


def test_unknown_key_in_toml(tmp_path, monkeypatch):
    cfg = tmp_path / "ivr.toml"
    cfg.write_text("prot = 1\n")
    monkeypatch.setenv("IVR_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load_settings()


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(" 0123456789-+０１２张李市区路号我叫是收件人幺三八\n.")), max_size=30)
       | st.text(max_size=30))
def test_masking_never_raises(text):
    """Whatever a caller or agent typed: the masks return text (a blank name raised IndexError once)."""
    for mask in (mask_address, mask_name, mask_phone, mask_text):
        assert isinstance(mask(text), str)


def test_masking():
    # the last four digits answer the verification question: no masked form keeps any of them
    assert mask_phone("13812345678") == "138****"
    assert mask_phone("+86 138-1234-5678") == "138****"
    assert mask_name("张伟") == "张*"
    assert mask_name(" ") == mask_name("") == mask_name(None) == ""  # a blank name field (was IndexError)
    assert mask_name(" 欧阳娜娜 ") == "欧***"
    assert mask_address("浙江省杭州市西湖区文三路90号") == "浙江省杭州市西湖区****"
    t = mask_text("我的手机是13812345678，座机010-12345678，订单号202411230001")
    assert "13812345678" not in t and "138****" in t and "5678" not in t and "12345678" not in t.replace("202411230001", "")
    assert "202411230001" in t  # order numbers are not phones
    spoken = mask_text("手机幺三八幺二三四五六七八")
    assert "幺三八****" in spoken and "五六七八" not in spoken
    assert "幺零零零零零零零零零零七" in mask_text("订单号 幺零零零零零零零零零零七")  # a spoken order number stays
    assert mask_text("幺 三 八 零 零 幺 三 八 零 零 零") == "幺三八****"  # recogniser output: digits spaced
    assert mask_text("订单号 幺 零 零 零 零 零 零 零 零 零 零 七").endswith("零 七")
    # a phone tail said outside the verification question (together with the order number) is a secret too
    said = mask_text("订单 幺零零零零零零零零零零二 尾号 八零零零")
    assert said.endswith("尾号 ****") and "幺零零零零零零零零零零二" in said
    assert mask_text("后四位是 5 6 7 8") == "后四位是 * * * *"


def test_log_lines_carry_call_id_and_mask_phones(capsys):
    setup_logging("INFO")
    token = call_id_var.set("call-42")
    try:
        logging.getLogger("ivr.test").info("caller %s said hi", "13812345678")
    finally:
        call_id_var.reset(token)
    err = capsys.readouterr().err
    assert "[call-42]" in err and "138****" in err and "13812345678" not in err and "5678" not in err

"""The shop's own words in <data_dir>/custom/: heard in a replayed call, validated at start-up, reloaded live."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ivr.bench.ports import reserve_port
from tests.conftest import ROOT, wait_healthy

FIXTURE = ROOT / "audio_fixtures" / "calls" / "product_question.yaml"
SPEED = 2.5  # as tests/test_replay_run.py's CI_SPEED
GREETING = "您好，欢迎致电张记百货，我是小张。请问有什么可以帮您？"
WARRANTY = "张记百货的家电保修两年，坏了直接寄回来。"


def _custom(data: Path) -> Path:
    c = data / "custom"
    (c / "kb").mkdir(parents=True)
    (c / "shop.yaml").write_text("name: 张记百货\n", encoding="utf-8")
    (c / "prompts.yaml").write_text(yaml.safe_dump({"greeting": GREETING}, allow_unicode=True), encoding="utf-8")
    (c / "kb" / "mine.yaml").write_text(yaml.safe_dump({"entries": [
        {"id": "warranty", "keywords": ["保修", "质保"], "answer": "优品商城的家电保修两年，坏了直接寄回来。"}]},
        allow_unicode=True), encoding="utf-8")
    return c


def _fixture(tmp_path: Path) -> Path:
    """The product-question call, expecting the shop's greeting and its warranty answer."""
    doc = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    doc["turns"][0]["say"] = str((FIXTURE.parent / doc["turns"][0]["say"]).resolve())
    doc["greeting"]["reply_contains"] = ["张记百货", "我是小张"]
    doc["turns"][0]["expect"]["reply_contains"] = ["保修两年", "张记百货"]
    doc["turns"][0]["expect"]["reply_not_contains"] = ["优品商城"]
    path = tmp_path / "shop_words.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def _replay(fixture: Path, data: Path, out: Path) -> tuple[int, dict]:
    """`ivr replay` with IVR_DATA_DIR=data (its custom/ folder applies), at the CI speed: these calls are about
    the words, not the timing (the turn-taking is the same on the scaled clock)."""
    env = {**os.environ, "IVR_DATA_DIR": str(data)}
    r = subprocess.run([sys.executable, "-m", "ivr", "replay", str(fixture), "--output", str(out), "--no-progress",
                        "--speed", str(SPEED)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(out.read_text(encoding="utf-8"))


def _said(report: dict) -> str:
    """Everything the bot said in the call (greeting and replies), as the report has it."""
    text = json.dumps(report, ensure_ascii=False)
    return " | ".join(re.findall(r'"(?:reply|text|greeting)": "([^"]*)"', text))


def test_greeting_and_kb_answer_overrides_are_heard_in_a_replayed_call(tmp_path):
    fixture = _fixture(tmp_path)
    plain = tmp_path / "plain"
    rc, report = _replay(fixture, plain, tmp_path / "plain.json")
    assert rc == 1 and "优品商城" in _said(report)  # the package's words: the expectations fail
    shop = tmp_path / "shop"
    _custom(shop)
    rc, report = _replay(fixture, shop, tmp_path / "shop.json")
    said = _said(report)
    assert rc == 0, said[:3000]
    assert "欢迎致电张记百货，我是小张" in said and WARRANTY in said and "优品商城" not in said


def test_prompt_and_kb_changes_apply_without_restart(tmp_path, monkeypatch):
    from ivr.dialog.kb import KnowledgeBase
    from ivr.lang import get_pack
    from ivr.lang.custom import set_custom_dir

    c = _custom(tmp_path / "data")
    set_custom_dir(c)
    try:
        pack = get_pack("zh-CN")
        kb = KnowledgeBase(pack.dir / "kb")
        assert pack.prompt("greeting") == GREETING
        assert kb.lookup("保修多久").answer == WARRANTY
        assert "张记百货" in pack.prompt("greeting.dtmf")  # the shop name reaches prompts not overridden
        time.sleep(0.01)
        (c / "prompts.yaml").write_text("greeting: 欢迎光临张记百货。\n", encoding="utf-8")
        (c / "kb" / "mine.yaml").write_text(
            "entries:\n  - {id: warranty, keywords: [保修], answer: 保修三年。}\n", encoding="utf-8")
        assert pack.prompt("greeting") == "欢迎光临张记百货。"
        assert kb.lookup("保修多久").answer == "保修三年。"
        (c / "prompts.yaml").write_text("greeting: 欢迎 {nobody}\n", encoding="utf-8")  # broken edit: kept old
        assert pack.prompt("greeting") == "欢迎光临张记百货。"
    finally:
        set_custom_dir(None)
    assert pack.prompt("greeting").startswith("您好，欢迎致电优品商城")


def test_serve_refuses_a_bad_override_folder_with_clear_errors(tmp_path):
    c = _custom(tmp_path / "data")
    (c / "prompts.yaml").write_text("greting: 你好\ngreeting: 你好 {order_id}\n", encoding="utf-8")
    (c / "shop.yaml").write_text("name: [\n", encoding="utf-8")
    (c / "nlu").mkdir()
    (c / "nlu" / "train.yaml").write_text("intents:\n  no_such_intent: [你好]\n", encoding="utf-8")
    (c / "kb" / "broken.yaml").write_text("entries:\n  - {id: x, keywords: [y]}\n", encoding="utf-8")
    env = {**os.environ, "IVR_DATA_DIR": str(tmp_path / "data")}
    r = subprocess.run([sys.executable, "-m", "ivr", "serve", "--port", "0", "--sip-port", "0"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    err = r.stderr
    assert "problem(s) in the override folder" in err
    assert "unknown prompt id 'greting'" in err
    assert "prompt 'greeting' uses {order_id}" in err
    assert "shop.yaml: line" in err and "not valid YAML" in err
    assert "unknown intent 'no_such_intent'" in err
    assert "broken.yaml: no entries" in err


def test_training_phrasings_are_added_and_sighup_reloads_a_running_service(tmp_path):
    import signal

    from ivr.lang import get_pack
    from ivr.lang.custom import set_custom_dir

    c = _custom(tmp_path / "data")
    (c / "nlu").mkdir()
    (c / "nlu" / "train.yaml").write_text("intents:\n  logistics: [我的宝贝走到哪儿了]\n", encoding="utf-8")
    set_custom_dir(c)
    try:
        merged = yaml.safe_load(get_pack("zh-CN").train_path.read_text(encoding="utf-8"))
        assert "我的宝贝走到哪儿了" in merged["intents"]["logistics"] and len(merged["intents"]["logistics"]) > 1
    finally:
        set_custom_dir(None)
    port = reserve_port()
    err = tmp_path / "err.txt"
    env = {**os.environ, "IVR_DATA_DIR": str(tmp_path / "data")}
    with err.open("w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "ivr", "serve", "--port", str(port), "--sip-port", "0"],
                                stdout=subprocess.DEVNULL, stderr=f, env=env)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, err.read_text)
        (c / "nlu" / "train.yaml").write_text("intents:\n  logistics: [宝贝到哪了]\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while "reloaded" not in err.read_text():
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.3)
        (c / "nlu" / "train.yaml").write_text("intents:\n  nonsense: [x]\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while "not reloaded" not in err.read_text():
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.3)
        assert "unknown intent 'nonsense'" in err.read_text()
        assert proc.poll() is None  # still serving
    finally:
        proc.terminate()
        proc.wait(timeout=60)


async def test_recorded_prompt_in_the_custom_folder_replaces_tts(tmp_path):
    import numpy as np
    import soundfile as sf

    from ivr.config import load_settings
    from ivr.tts import get_tts

    data = tmp_path / "data"
    (data / "custom" / "prompts").mkdir(parents=True)
    t = np.arange(16000) / 16000
    sf.write(str(data / "custom" / "prompts" / "greeting.wav"), 0.5 * np.sin(2 * np.pi * 440 * t), 16000)
    tts = get_tts(load_settings({"data_dir": str(data)}))
    frame = await tts.synthesize("您好", 8000, prompt_id="greeting")
    spec = np.abs(np.fft.rfft(frame.to_float()))
    assert frame.duration == 1.0 and abs(np.fft.rfftfreq(frame.samples, 1 / 8000)[spec.argmax()] - 440) < 3
    other = await tts.synthesize("您好", 8000, prompt_id="goodbye")  # no recording: espeak-ng speaks it
    assert other.duration != 1.0
    (data / "custom" / "prompts" / "nosuch.wav").write_bytes(b"RIFF")
    from ivr.lang import get_pack
    from ivr.lang.custom import check

    assert any("nosuch.wav: no prompt called 'nosuch'" in p for p in check(get_pack("zh-CN"), data / "custom"))

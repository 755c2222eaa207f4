"""Syllable features: a recogniser's homophones keep an utterance's evidence (pack.yaml ``phonetic: pinyin``)."""

from __future__ import annotations

import pytest

from ivr.dialog.nlu import get_nlu
from ivr.dialog.nlu.classifier import Featurizer, TrainingDataError
from ivr.dialog.nlu.phonetic import bigram_features, syllables, table
from ivr.lang import get_pack


def test_homophones_share_their_syllable_features():
    assert syllables("退货a", "pinyin") == ["tui", "huo", ""]
    assert bigram_features("快递到哪了", "pinyin") == bigram_features("快地到哪了", "pinyin")
    assert "p:tui_huo" in bigram_features("我要退获", "pinyin")
    assert bigram_features("快递", None) == []


@pytest.mark.parametrize(("text", "intent"), [
    ("帮 我 查 下 我 的 快 地 到 哪 了", "logistics"),   # 快地 for 快递
    ("我 想 退 获 这 个 东 西", "return_request"),         # 退获 for 退货
    ("取 消 定 单", "cancel_order"),                        # 定单 for 订单
])
def test_zh_pack_reads_through_homophones(text, intent):
    nlu = get_nlu("zh-CN")
    r = nlu.parse(text)
    assert r.intent == intent, r.explanation
    assert any(f.startswith("p:") for f, _ in r.explanation["top_features"])


def test_the_shipped_pinyin_table_is_pypinyins_reading_of_every_character():
    """ivr/lang/zh_CN/phonetic/pinyin.txt (read at start instead of importing pypinyin) says for each CJK character
    what pypinyin says: regenerate it with scripts/make_pinyin_table.py after upgrading pypinyin."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "make_pinyin_table", Path(__file__).resolve().parent.parent / "scripts" / "make_pinyin_table.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    expected = maker.table()
    shipped = table("pinyin")
    wrong = [(chr(maker.FIRST + i), a, b) for i, (a, b) in enumerate(zip(shipped, expected, strict=True)) if a != b]
    assert not wrong, f"{len(wrong)} characters differ (shipped, pypinyin), e.g. {wrong[:5]}"
    assert syllables("绿色", "pinyin") == ["lv", "se"]  # ü written v, as pypinyin's NORMAL style


def test_starting_the_nlu_does_not_load_pypinyin():
    """~0.5 CPU-s at every service start and every `ivr` command that understands text."""
    import subprocess
    import sys

    probe = "import sys; from ivr.dialog.nlu import get_nlu; get_nlu('zh-CN'); print('pypinyin' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "False", out.stdout


def test_unknown_phonetic_scheme_is_a_clear_error(monkeypatch):
    pack = get_pack("zh-CN")
    monkeypatch.setitem(pack.data, "phonetic", "soundex")
    with pytest.raises(TrainingDataError, match="phonetic must be one of pinyin"):
        Featurizer(pack)

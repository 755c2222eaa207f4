"""The zh-CN language pack: number reading and parsing, normalisation of recogniser text, prompts."""

from __future__ import annotations

from datetime import date

import pytest

from ivr.lang import LanguagePack, PromptError, UnknownLanguageError, available_languages, get_pack


@pytest.fixture(scope="module")
def zh():
    return get_pack("zh-CN")


def test_pack_is_cached_and_unknown_codes_fail_clearly():
    assert get_pack("zh-CN") is get_pack()
    assert "zh-CN" in available_languages()
    with pytest.raises(UnknownLanguageError, match="no language pack for 'fr-FR'.*zh-CN"):
        get_pack("fr-FR")
    with pytest.raises(UnknownLanguageError, match="bad language code"):
        get_pack("../etc")


@pytest.mark.parametrize(("digits", "spoken"), [
    ("13800", "幺三八零零"), ("0", "零"), ("9527", "九五二七"), ("138-0013", "幺三八零零幺三"),
])
def test_say_digits_reads_phone_style(zh, digits, spoken):
    assert zh.say_digits(digits) == spoken


@pytest.mark.parametrize(("n", "spoken"), [
    (1024, "一千零二十四"), (10, "十"), (12, "十二"), (102, "一百零二"), (20000, "二万"),
    (0, "零"), (-3, "负三"),
])
def test_say_number(zh, n, spoken):
    assert zh.say_number(n) == spoken


@pytest.mark.parametrize(("cents", "spoken"), [
    (12990, "一百二十九元九角"), (12905, "一百二十九元零五分"), (12999, "一百二十九元九角九分"),
    (5, "五分"), (50, "五角"), (100, "一元"), (0, "零元"), (-250, "负二元五角"),
])
def test_say_amount(zh, cents, spoken):
    assert zh.say_amount(cents) == spoken


def test_say_date_relative_then_month_day(zh):
    today = date(2025, 11, 20)
    assert zh.say_date(date(2025, 11, 20), today) == "今天"
    assert zh.say_date(date(2025, 11, 21), today) == "明天"
    assert zh.say_date(date(2025, 11, 22), today) == "后天"
    assert zh.say_date(date(2025, 11, 19), today) == "昨天"
    assert zh.say_date(date(2025, 11, 25), today) == "十一月二十五日"
    assert zh.say_date(date(2026, 1, 5), today) == "二零二六年一月五日"


@pytest.mark.parametrize(("spoken", "digits"), [
    ("幺三八零零", "13800"),
    ("幺 三 八 洞 洞 两 两", "1380022"),                # ASR spacing, 洞 = 0, 两 = 2
    ("我的订单号是 幺三八 零零 四五六", "13800456"),
    ("三个八 两个零", "88800"),
    ("幺三八不是三九", "138"),                           # "138, not 139": the rejected part is dropped
    ("幺二三 不是三是四", "124"),                       # "not 3 but 4" replaces the last digit
    ("幺二三四五 不对 四六", "12346"),                  # restating the tail
    ("幺二三四 说错了 幺二三五", "1235"),              # restating the whole number
    ("不是幺三八 是幺三九", "139"),
    ("查一下 订单 五六七八九", "56789"),               # the 一 of 查一下 is not a digit
    ("１３８ ００", "13800"),                            # full-width Arabic digits
    ("尾号拐勾幺洞", "7910"),
    ("幺零零零零零零零零零零二", "100000000002"),       # long runs of one digit survive normalisation
    ("幺 零 零 零 零 零 零 零 零 零 零 二", "100000000002"),
    ("尾号是 八八八八", "8888"),
    ("零零零零", "0000"),
    ("嗯嗯嗯 五五五六", "5556"),
])
def test_parse_digits(zh, spoken, digits):
    assert zh.parse_digits(spoken) == digits


def test_parse_digits_without_digits_is_empty(zh):
    assert zh.parse_digits("我想问一下物流") == ""
    assert zh.parse_digits("") == ""


@pytest.mark.parametrize(("text", "n"), [("二十三", 23), ("两", 2), ("一百零八", 108), ("15", 15), ("快递", None)])
def test_parse_number(zh, text, n):
    assert zh.parse_number(text) == n


@pytest.mark.parametrize(("text", "expected"), [
    ("明天 送 吧", date(2025, 11, 21)),
    ("大后天", date(2025, 11, 23)),
    ("下周三", date(2025, 11, 26)),
    ("周一", date(2025, 11, 24)),                 # a passed weekday means the coming one
    ("十一月二十五号", date(2025, 11, 25)),
    ("25号 上午", date(2025, 11, 25)),
    ("订单号 幺三八", None),                       # 号 after 单 is not a day
    ("二月三十号", None),                          # impossible date
])
def test_parse_date(zh, text, expected):
    assert zh.parse_date(text, today=date(2025, 11, 20)) == expected


@pytest.mark.parametrize(("asr", "normal"), [
    ("嗯 那个 我 想 查 一下 快递", "我想查一下快递"),
    ("俺 的 快递 咋 还 木有 到", "我的快递怎么还没有到"),
    ("我我我 想 退货", "我想退货"),
    ("订单金额 不对", "订单金额不对"),             # 额 inside a word is not a filler
    ("然后 就是 发票 开 错 了", "发票开错了"),
    ("嗯", "嗯"),                                   # a lone 嗯 is an answer (yes), kept
    ("你好，请问在吗？", "你好请问在吗"),
    ("ＯＫ", "ok"),
    ("嗯嗯嗯 好的", "好的"),                         # a stuttered filler collapses, then drops
    ("幺零零零零零零零零零零二", "幺零零零零零零零零零零二"),  # repeated digit words are a number, not a stutter
    ("尾号 八 八 八 八", "尾号八八八八"),
    ("洞洞洞洞 两两两", "洞洞洞洞两两两"),
    ("尾号 0000", "尾号 0000"),
])
def test_normalize_asr_text(zh, asr, normal):
    assert zh.normalize(asr) == normal


def test_tokenize_uses_shop_dictionary(zh):
    words = zh.tokenize(zh.normalize("我 想 申请 价保 还有 七天无理由 退货"))
    assert "价保" in words and "七天无理由" in words and "退货" in words


def test_sentiment_and_slot_lexicons_are_there_for_the_dialogue(zh):
    s = zh.sentiment
    assert "投诉" in s["anger"] and s["intensifiers"]["太"] > 1 and "不" in s["negators"]
    assert zh.user_dict_path.is_file() and zh.train_path.is_file()
    assert zh.lexicon["slots"]["return_reasons"]["size"]["label"]


def test_prompts_fill_fields_pick_variants_and_fail_clearly(tmp_path):
    (tmp_path / "pack.yaml").write_text("code: xx-XX\n", encoding="utf-8")
    (tmp_path / "prompts.yaml").write_text(
        "welcome: 您好，这里是{shop}客服。\nretry: [请再说一遍。, 抱歉，我没听清。]\n", encoding="utf-8")
    pack = LanguagePack(tmp_path)
    assert pack.prompt("welcome", shop="小米") == "您好，这里是小米客服。"
    assert pack.prompt("retry") == "请再说一遍。"
    assert pack.prompt("retry", variant=1) == "抱歉，我没听清。"
    assert pack.prompt("retry", variant=2) == "请再说一遍。"
    with pytest.raises(PromptError, match="needs field 'shop'"):
        pack.prompt("welcome")
    with pytest.raises(PromptError, match="no prompt 'nope'"):
        pack.prompt("nope")

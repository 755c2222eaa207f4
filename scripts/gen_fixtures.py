#!/usr/bin/env python3
"""Generate the shipped replay suite in audio_fixtures/ (deterministic: same espeak-ng, same bytes).

Each fixture is one call against the seeded demo shop (the fixed demo orders of docs/oms.md; 张伟 calls from
13800138000, 李娜 from 13912345678). Callers are espeak-ng Mandarin voices at several speeds and pitches; some
calls come over an 8 kHz G.711 (mu-law) telephone line; some have background noise (a seeded RNG), long pauses,
callers who talk over the bot, and short backchannels that must not stop it.

    .venv/bin/python scripts/gen_fixtures.py            # (re)write audio_fixtures/
    .venv/bin/python scripts/gen_fixtures.py --check    # exit 1 if the committed files differ from a fresh run
    .venv/bin/python scripts/gen_fixtures.py --out DIR  # write somewhere else

Reference transcripts are written the way a phone recogniser would produce them: no punctuation, words separated
by spaces, digits as Chinese words. The audio is synthesised from the same text without the spaces.
"""

from __future__ import annotations

import argparse
import filecmp
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.audio import g711  # noqa: E402
from ivr.audio.frames import AudioFrame  # noqa: E402
from ivr.audio.resample import resample  # noqa: E402

OUT = ROOT / "audio_fixtures"
WIDEBAND_RATE = 16000
LEAD_S, TAIL_S = 0.25, 0.35  # silence around each utterance, as a phone line would carry it


@dataclass(frozen=True)
class Voice:
    """An espeak-ng caller voice: variant, words per minute, pitch (0-99)."""

    variant: str
    speed: int
    pitch: int
    amplitude: int = 100


VOICES = {
    "mei": Voice("cmn+f3", 150, 65),  # calm woman
    "jun": Voice("cmn+m3", 175, 40),  # man, average pace
    "xiao": Voice("cmn+f2", 215, 78),  # fast-talking young woman
    "lao": Voice("cmn+m1", 135, 22, 120),  # slow older man, low and loud
    "fang": Voice("cmn+f4", 190, 55, 70),  # quiet woman
}

ZHANG = "13800138000"  # 张伟: orders 100000000001-4, 8
LI = "13912345678"  # 李娜: orders 100000000005-7, 9-11
STRANGER = "13700001111"  # a number the shop does not know

_DIGITS = dict(zip("0123456789", ["零", "幺", "二", "三", "四", "五", "六", "七", "八", "九"], strict=True))
_DIGITS_YI = {**_DIGITS, "1": "一"}


def verified(phone: str, expect: dict, **kw: Any) -> dict:
    """The caller answers the verification question with the phone's last four digits (a caller ID verifies
    nothing: docs/security.md); ``expect`` is what the verified caller then hears."""
    return say(f"尾号 是 {spoken(phone[-4:])}", {"actions": ["caller_verified"], **expect}, **kw)


def asks_tail(intent: str | None = None, *never: str) -> dict:
    """The bot asks for the phone tail and says nothing of the order (``never``: words it must not say yet)."""
    e: dict[str, Any] = {"reply_contains": ["后四位"], "reply_not_contains": list(never) or ["签收"]}
    if intent:
        e["intent"] = intent
    return e


def spoken(digits: str, yao: bool = True) -> str:
    """'100000000002' -> '幺 零 零 ... 二' (callers read numbers digit by digit; many say 幺 for 1)."""
    table = _DIGITS if yao else _DIGITS_YI
    return " ".join(table[d] for d in digits)


# --- turns ---------------------------------------------------------------------------------------------------
def say(text: str, expect: dict | None = None, *, voice: str | None = None, wait: float | None = None,
        barge_in_at: float | None = None, note: str = "", speed: int | None = None) -> dict:
    t: dict[str, Any] = {"say": None, "text": text, "_voice": voice, "_speed": speed}
    if wait is not None:
        t["wait"] = wait
    if barge_in_at is not None:
        t["barge_in_at"] = barge_in_at
    if note:
        t["note"] = note
    if expect:
        t["expect"] = expect
    return t


def dtmf(keys: str, expect: dict | None = None, *, wait: float | None = None) -> dict:
    t: dict[str, Any] = {"dtmf": keys}
    if wait is not None:
        t["wait"] = wait
    if expect:
        t["expect"] = expect
    return t


def silence(seconds: float, expect: dict | None = None) -> dict:
    t: dict[str, Any] = {"silence": seconds}
    if expect:
        t["expect"] = expect
    return t


HANGUP = {"hangup": True}


@dataclass
class Spec:
    name: str
    description: str
    voice: str
    turns: list[dict]
    caller_id: str = ""
    line: str = "wideband"
    tags: list[str] = field(default_factory=list)
    greeting: dict | None = None
    expect: dict | None = None
    noise_snr_db: float | None = None  # background bed level relative to the caller's speech


GREETING = {"reply_contains": ["您好"], "intent": "greeting"}
# An unsure request: the bot asks which of two needs, and neither flow starts (no order question yet).
CLARIFY_ASKED = {"state": "clarify", "actions": ["clarify"], "reply_contains": ["还是"], "reply_not_contains": ["订单号"]}
O1, O2, O3, O4, O6, O7 = "100000000001", "100000000002", "100000000003", "100000000004", "100000000006", "100000000007"

SPECS: list[Spec] = [
    # --- happy paths, one per flow -------------------------------------------------------------------------
    Spec("order_status_voice", "张伟 asks for his delivered order by voice, then its logistics (context carry-over), "
         "says goodbye and rates the call.", "jun", caller_id=ZHANG, tags=["order_status", "logistics", "csat"],
         greeting=GREETING, turns=[
             say(f"我 想 查 一下 订单 订单 号 是 {spoken(O2)}",
                 {**asks_tail("order_status", "签收", "跑步鞋"), "slots": {"order_id": O2}, "max_latency_ms": 4000}),
             verified(ZHANG, {"reply_contains": ["签收"]}),
             say("那 物流 呢", {"intent": "logistics", "reply_contains": ["包裹", "签收"]}),
             say("没有 了 谢谢", {"reply_contains_any": ["打个分", "再见"]}),
             say("五 分", {"reply_contains": ["感谢"], "end_call": True}),
         ], expect={"outcome": "self_served", "ended_by": "bot"}),
    Spec("order_status_dtmf_telephone", "A withheld number on an 8 kHz telephone line uses only the keypad: menu 1, "
         "order number ending with #, phone tail for verification.", "jun", line="telephone",
         tags=["order_status", "dtmf", "verification", "telephone"], greeting=GREETING, turns=[
             dtmf("1", {"reply_contains": ["订单号"]}),
             dtmf(O7 + "#", {"reply_contains": ["后四位"], "reply_not_contains": ["签收"]}),
             dtmf("5678", {"reply_contains": ["签收"]}),
             HANGUP,
         ], expect={"ended_by": "caller"}),
    Spec("logistics_delayed", "A fast talker asks where her late parcel is; the bot names the carrier, the new date "
         "and apologises for the delay.", "xiao", caller_id=ZHANG, tags=["logistics", "delay"], greeting=GREETING,
         turns=[
             say(f"我的 快递 怎么 还 没 到 啊 订单 号 {spoken(O1, yao=False)}", asks_tail("logistics", "顺丰")),
             verified(ZHANG, {"reply_contains": ["顺丰"], "reply_contains_any": ["抱歉", "晚了"]}),
             HANGUP,
         ]),
    Spec("return_request_ok", "A 7-day no-reason return of delivered running shoes: reason, pickup slot, "
         "confirmation, RMA number read back.", "mei", caller_id=ZHANG, tags=["return_request", "write"],
         greeting=GREETING, turns=[
             say(f"我 要 退货 订单 号 是 {spoken(O2)}", asks_tail("return_request", "原因")),
             verified(ZHANG, {"reply_contains": ["原因"]}),
             say("尺码 不 合适", {"reply_contains": ["上门取件"]}),
             say("明天 上午", {"reply_contains": ["确认", "尺码", "明天上午"], "no_actions": ["return_created"]}),
             say("是 的 确认", {"actions": ["return_created"], "reply_contains": ["退货单号"]}),
             HANGUP,
         ], expect={"actions": ["return_created"]}),
    Spec("exchange_request_ok", "Shoes too small: an exchange with pickup, confirmed.", "fang", caller_id=ZHANG,
         tags=["exchange_request", "write"], greeting=GREETING, turns=[
             say(f"鞋子 小 了 我 想 换 一 双 大 一 码 的 订单 号 {spoken(O2)}",
                 asks_tail("exchange_request", "上门取件")),
             verified(ZHANG, {"reply_contains": ["上门取件"]}),
             say("后天", {"reply_contains": ["换货", "尺码", "后天", "确认"]}),
             say("对 确认", {"reply_contains": ["换货单号"], "actions": ["exchange_created"]}),
             HANGUP,
         ]),
    Spec("refund_status", "李娜 asks where the refund of her returned serum is.", "mei", caller_id=LI,
         tags=["refund_status"], greeting=GREETING, turns=[
             say(f"我 退货 的 钱 什么 时候 到 账 订单 {spoken(O6)}", asks_tail("refund_status", "到账", "处理")),
             verified(LI, {"reply_contains": ["退款"], "reply_contains_any": ["到账", "处理"]}),
             HANGUP,
         ]),
    Spec("cancel_order_ok", "Cancelling a paid order that has not shipped, confirmed.", "jun", caller_id=ZHANG,
         tags=["cancel_order", "write"], greeting=GREETING, turns=[
             say(f"帮 我 取消 订单 {spoken(O4)}", asks_tail("cancel_order", "确认取消")),
             verified(ZHANG, {"reply_contains": ["确认取消"]}),
             say("确认 取消", {"reply_contains": ["已取消"], "actions": ["order_cancelled"]}),
             HANGUP,
         ]),
    Spec("change_address", "Changing the delivery address of an order before shipment.", "xiao", caller_id=ZHANG,
         tags=["change_address", "write"], greeting=GREETING, turns=[
             say(f"我 想 改 一下 收货 地址 订单 号 {spoken(O4)}", asks_tail("change_address", "地址是")),
             verified(ZHANG, {"reply_contains": ["地址"]}),
             say("上海市 徐汇区 漕溪北路 八十八 号 二 号楼 三 零 一", {"reply_contains": ["确认修改"]}),
             say("对 的", {"reply_contains": ["修改好了"], "actions": ["address_changed"]}),
             HANGUP,
         ]),
    Spec("invoice_resend", "李娜 did not receive her invoice; it is resent by keypad choice.", "fang", caller_id=LI,
         tags=["invoice", "dtmf"], greeting=GREETING, turns=[
             say(f"发票 没 收到 能 再 发 一 次 吗 订单 号 {spoken(O7)}", asks_tail("invoice", "邮箱")),
             verified(LI, {"reply_contains": ["邮箱", "确认发送"]}),
             dtmf("1", {"reply_contains": ["已经重新发送"], "actions": ["invoice_resent"]}),
             HANGUP,
         ]),
    Spec("price_protection", "The air conditioner got 200 yuan cheaper after purchase: 保价 refund of the difference.",
         "lao", caller_id=LI, tags=["price_promotion", "write"], greeting=GREETING, turns=[
             say(f"我 买 的 空调 降价 了 能 保价 吗 订单 {spoken(O7, yao=False)}", asks_tail("price_promotion", "价格保护")),
             verified(LI, {"reply_contains": ["价格保护", "确认"]}),
             say("确认 申请", {"reply_contains": ["差价"], "actions": ["price_protected"]}),
             HANGUP,
         ]),
    Spec("promotions", "Asking about current promotions.", "mei", caller_id=STRANGER, tags=["price_promotion"],
         greeting=GREETING, turns=[
             say("最近 有 什么 优惠 活动 吗", {"intent": "price_promotion", "reply_contains_any": ["优惠", "活动"]}),
             HANGUP,
         ]),
    Spec("product_question", "A policy question answered from the knowledge base.", "jun", caller_id=STRANGER,
         tags=["product_question"], greeting=GREETING, turns=[
             say("你们 的 商品 保修 多久", {"intent": "product_question", "reply_contains": ["保修"],
                                        "actions": ["kb_answer"]}),
             HANGUP,
         ]),
    Spec("complaint", "A complaint about a courier is registered as a ticket after confirmation.", "lao",
         caller_id=ZHANG, tags=["complaint", "write"], greeting=GREETING, turns=[
             say("我 要 投诉 你们 的 快递员 态度 不好 把 包裹 扔 在 门口", {"intent": "complaint",
                                                            "reply_contains": ["抱歉", "登记投诉"]}),
             say("是 的", {"reply_contains": ["投诉单号"], "actions": ["ticket_created"]}),
             HANGUP,
         ]),
    Spec("human_agent", "The caller asks for a human straight away.", "fang", caller_id=STRANGER,
         tags=["human_agent", "transfer"], greeting=GREETING, turns=[
             say("转 人工", {"intent": "human_agent", "actions": ["transfer"], "reply_contains": ["人工"]}),
         ]),
    # --- unhappy paths -------------------------------------------------------------------------------------
    Spec("angry_caller", "A furious caller is apologised to and transferred with priority at once.", "lao",
         caller_id=ZHANG, tags=["sentiment", "transfer"], greeting=GREETING, turns=[
             say("太 气人 了 你们 这 什么 垃圾 服务 气死 我 了 马上 给 我 转 人工",
                 {"actions": ["transfer"], "reply_contains": ["抱歉", "优先转接"]}),
         ]),
    Spec("unknown_order", "An order number that does not exist, twice: the bot asks to check, then offers the "
         "keypad.", "jun", caller_id=STRANGER, tags=["order_status", "not_found"], greeting=GREETING, turns=[
             say(f"查 一下 订单 {spoken('900000000123')}", {"reply_contains": ["没有查到"], "actions": ["order_not_found"]}),
             say(f"订单 号 是 {spoken('900000000124')}", {"reply_contains": ["没有查到"]}),
             HANGUP,
         ]),
    Spec("verification_failed", "A stranger asks about 张伟's order and cannot give the phone tail: no order "
         "detail is ever spoken.", "xiao", caller_id=STRANGER, tags=["verification", "privacy"], greeting=GREETING,
         turns=[
             say(f"帮 我 查 一下 订单 {spoken(O2)}", {"reply_contains": ["后四位"], "reply_not_contains": ["签收"]}),
             say("一 二 三 四", {"reply_contains": ["不对"], "reply_not_contains": ["签收", "跑步鞋"]}),
             say("四 三 二 一", {"reply_not_contains": ["签收", "跑步鞋"]}),
             say("五 五 五 五", {"reply_not_contains": ["签收", "跑步鞋"], "actions": ["verification_failed"]}),
             HANGUP,
         ], expect={"no_actions": ["return_created"]}),
    Spec("return_window_closed", "A return 20 days after delivery is refused politely (七天无理由 has passed).",
         "lao", caller_id=ZHANG, tags=["return_request", "not_eligible"], greeting=GREETING, turns=[
             say(f"这个 破壁机 我 不 想 要 了 要 退货 订单 号 {spoken(O3, yao=False)}",
                 asks_tail("return_request", "超过七天", "破壁机")),
             verified(ZHANG, {"reply_contains": ["超过七天"], "actions": ["caller_verified", "not_eligible"],
                              "no_actions": ["return_created"]}),
             HANGUP,
         ], expect={"no_actions": ["return_created"]}),
    Spec("cancel_already_shipped", "Cancelling an order that is already on its way is refused.", "mei",
         caller_id=ZHANG, tags=["cancel_order", "not_allowed"], greeting=GREETING, turns=[
             say(f"我 要 取消 订单 {spoken(O1)}", asks_tail("cancel_order", "已经发货")),
             verified(ZHANG, {"reply_contains": ["已经发货"]}),
             HANGUP,
         ], expect={"no_actions": ["order_cancelled"]}),
    Spec("return_changed_mind", "On a telephone line the caller changes his mind at the confirmation: nothing is "
         "written.", "jun", caller_id=ZHANG, line="telephone", tags=["return_request", "telephone", "deny"],
         greeting=GREETING, turns=[
             say(f"我 想 退货 订单 号 {spoken(O2)}", asks_tail("return_request", "原因")),
             verified(ZHANG, {"reply_contains": ["原因"]}),
             say("不 想 要 了", {"reply_contains": ["上门取件"]}),
             say("明天 下午", {"reply_contains": ["确认"]}),
             say("算了 还是 不 退 了", {"reply_contains": ["没有提交"], "no_actions": ["return_created"]}),
             HANGUP,
         ], expect={"no_actions": ["return_created"]}),
    Spec("silence_no_input", "The caller never says anything: reprompts with more help each time, then a polite "
         "goodbye and the bot hangs up.", "mei", caller_id=STRANGER, tags=["no_input"], greeting=GREETING, turns=[
             silence(9, {"reply_contains": ["没有听到"]}),
             silence(9, {"reply_contains": ["按键"]}),
             silence(9, {"reply_contains": ["再见"], "end_call": True}),
         ], expect={"ended_by": "bot"}),
    Spec("garbage_input", "Off-topic talk twice: the bot admits it did not understand, then offers keypad or "
         "human.", "xiao", caller_id=STRANGER, tags=["no_match"], greeting=GREETING, turns=[
             say("今天 天气 怎么样 我家 的 猫 会 后空翻", {"reply_contains": ["没太听明白"]}),
             say("随便 聊聊 呗 你 吃饭 了 吗", {"reply_contains_any": ["按键", "转人工"]}),
             HANGUP,
         ]),
    Spec("barge_in_greeting", "The caller talks over the greeting; the bot stops at once and answers.", "jun",
         caller_id=ZHANG, tags=["barge_in"], greeting={"intent": "greeting"}, turns=[
             say(f"查 一下 物流 订单 号 {spoken(O1)}", {"interrupted": True, **asks_tail("logistics", "顺丰")},
                 barge_in_at=1.5),
             verified(ZHANG, {"reply_contains": ["顺丰"]}),
             HANGUP,
         ]),
    Spec("backchannel_keeps_bot_talking", "A short 嗯 while the bot reads an answer does not cut it off.", "mei",
         caller_id=ZHANG, tags=["barge_in", "backchannel"], greeting=GREETING, turns=[
             say(f"我 想 查 订单 {spoken(O2)}", asks_tail("order_status", "签收")),
             verified(ZHANG, {"reply_contains": ["签收"]}),
             say("嗯", {"interrupted": False, "reply": False}, barge_in_at=1.2, speed=340,
                 note="a backchannel, shorter than the barge-in minimum"),
             HANGUP,
         ]),
    Spec("long_pause_before_answer", "The caller thinks for five seconds before giving the order number; the bot "
         "waits without reprompting.", "lao", caller_id=ZHANG, tags=["pause"], greeting=GREETING, turns=[
             say("查 订单", {"intent": "order_status", "reply_contains": ["订单号"], "reply_not_contains": ["购买"]}),
             say(f"嗯 我 找 一下 {spoken(O4)}", {"reply_contains": ["后四位"], "reply_not_contains": ["没有听到", "备货"]},
                 wait=5.0),
             verified(ZHANG, {"reply_contains": ["备货"]}),
             HANGUP,
         ]),
    Spec("noisy_street_order_status", "Order status from a noisy street (background noise at 15 dB SNR).", "xiao",
         caller_id=LI, tags=["noise", "order_status"], noise_snr_db=15, greeting=GREETING, turns=[
             say(f"查 一下 我 的 订单 {spoken('100000000011')}", asks_tail("order_status", "运输")),
             verified(LI, {"reply_contains": ["运输"]}),
             HANGUP,
         ]),
    Spec("noisy_telephone_refund", "Refund status over a noisy 8 kHz telephone line.", "fang", caller_id=LI,
         line="telephone", tags=["noise", "telephone", "refund_status"], noise_snr_db=18, greeting=GREETING, turns=[
             say(f"退款 到 哪 了 订单 {spoken(O6)}", asks_tail("refund_status", "到账")),
             verified(LI, {"reply_contains": ["退款"]}),
             HANGUP,
         ]),
    Spec("global_commands", "Repeat and back-to-menu work from inside a flow.", "fang", caller_id=ZHANG,
         tags=["repeat", "main_menu"], greeting=GREETING, turns=[
             say("我 要 退货", {"intent": "return_request"}),
             say("重复 一 遍", {"reply": True}),
             say("返回 主菜单", {"reply_contains_any": ["主菜单", "有什么可以帮您"]}),
             HANGUP,
         ]),
    # --- clarifying question (docs/nlu.md): one fixture per way of answering it; nothing starts before it ------
    Spec("clarify_by_name", "Parcel or return? The unsure request starts no flow; the caller names the parcel and "
         "the logistics flow reads it.", "mei", caller_id=ZHANG, tags=["clarify", "clarify_by_name", "logistics"],
         greeting=GREETING, turns=[
             say("东西 还 没 收到 我 不 想 要 了", CLARIFY_ASKED),
             say("查 物流", {"intent": "logistics", "state": "ask_order", "actions": ["clarified"]}),
             say(f"订单 号 {spoken(O1)}", asks_tail(None, "顺丰")),
             verified(ZHANG, {"reply_contains": ["顺丰"]}),
             HANGUP,
         ], expect={"no_actions": ["return_created"]}),
    Spec("clarify_by_position", "The caller answers the clarifying question by position (后面 那个): the second "
         "candidate is served.", "jun", caller_id=ZHANG, tags=["clarify", "clarify_by_position"], greeting=GREETING,
         turns=[
             say("东西 还 没 收到 我 不 想 要 了", CLARIFY_ASKED),
             say("后面 那个", {"state": "ask_order", "actions": ["clarified"], "no_actions": ["clarify"]}),
             HANGUP,
         ], expect={"no_actions": ["return_created"]}),
    Spec("clarify_by_key", "On an 8 kHz line the caller picks the first candidate with key 1.", "lao",
         caller_id=ZHANG, line="telephone", tags=["clarify", "clarify_by_key", "telephone", "dtmf"],
         greeting=GREETING, turns=[
             say("能 不能 快 点 我 不 要 了", CLARIFY_ASKED),
             dtmf("1", {"actions": ["clarified"], "no_actions": ["clarify"]}),
             HANGUP,
         ], expect={"no_actions": ["return_created", "order_cancelled"]}),
    Spec("clarify_neither", "Neither candidate: back to the open question, nothing started; a clear request "
         "then works.", "fang", caller_id=ZHANG, tags=["clarify", "clarify_neither", "invoice"], greeting=GREETING,
         turns=[
             say("东西 到 了 但是 有 问题", CLARIFY_ASKED),
             say("都 不是", {"state": "main_menu", "actions": ["clarify_neither"], "reply_contains": ["请问"]}),
             say("我 要 开 发票", {"intent": "invoice"}),
             HANGUP,
         ], expect={"no_actions": ["return_created", "exchange_created"]}),
    Spec("clarify_unclear_answer", "An unclear answer to the clarifying question gets it again with the keys, a "
         "second one the menu hint.", "xiao", caller_id=ZHANG, tags=["clarify", "clarify_unclear"],
         greeting=GREETING, turns=[
             say("东西 还 没 收到 我 不 想 要 了", CLARIFY_ASKED),
             say("嗯 这个 吧", {"state": "clarify", "reply_contains": ["按1"]}),
             say("哈哈哈", {"state": "main_menu", "reply_contains": ["查订单"]}),
             HANGUP,
         ], expect={"no_actions": ["return_created"]}),
    Spec("clarify_new_request", "Instead of answering the clarifying question the caller makes a clear new "
         "request: it is served.", "mei", caller_id=LI, tags=["clarify", "clarify_new_request", "invoice"],
         greeting=GREETING, turns=[
             say("东西 还 没 收到 我 不 想 要 了", CLARIFY_ASKED),
             say(f"我 要 开 发票 订单 号 {spoken(O7)}", {"intent": "invoice", "no_actions": ["clarified"],
                                                  **asks_tail(None, "邮箱")}),
             HANGUP,
         ], expect={"no_actions": ["return_created"]}),
    # --- two needs in one utterance: the first is served, the second offered right after ---------------------
    Spec("two_needs_logistics_invoice", "Parcel and invoice in one breath: the parcel first, then the invoice is "
         "offered and accepted on the same verified order.", "fang", caller_id=LI,
         tags=["two_needs", "logistics", "invoice"], greeting=GREETING, turns=[
             say(f"查 一下 物流 顺便 开 个 发票 订单 号 {spoken(O7)}", asks_tail("logistics", "签收", "发票")),
             verified(LI, {"actions": ["logistics_read", "second_need_offered"], "state": "second_need",
                           "reply_contains": ["办理发票"]}),
             say("好 的", {"intent": "invoice", "actions": ["second_need_accepted"],
                          "no_actions": ["caller_verified"], "reply_contains": ["发票"]}),
             HANGUP,
         ]),
    Spec("two_needs_declined", "Order status and refund progress in one utterance: the refund is offered after "
         "the status and declined.", "jun", caller_id=ZHANG, tags=["two_needs", "order_status", "refund_status", "deny"],
         greeting=GREETING, turns=[
             say(f"帮 我 看看 我 的 订单 {spoken(O4)} 另外 退款 到 哪 了",
                 asks_tail("order_status", "备货", "退款")),
             verified(ZHANG, {"state": "second_need", "actions": ["second_need_offered"],
                              "reply_contains": ["查退款进度"]}),
             say("不用 了", {"state": "main_menu", "reply_contains": ["还有"], "no_actions": ["second_need_accepted"]}),
             HANGUP,
         ]),
    Spec("two_needs_cancel_refund", "On a telephone line: cancel a paid order and ask about the money; the "
         "refund question is offered after the cancellation.", "xiao", caller_id=ZHANG, line="telephone",
         tags=["two_needs", "cancel_order", "refund_status", "telephone"], greeting=GREETING, turns=[
             say(f"帮 我 取消 订单 {spoken(O4)} 还有 就是 退款 多久 到 账",
                 asks_tail("cancel_order", "确认取消")),
             verified(ZHANG, {"reply_contains": ["确认取消"]}),
             say("确认 取消", {"actions": ["order_cancelled", "second_need_offered"],
                            "reply_contains": ["查退款进度"]}),
             say("好 的", {"intent": "refund_status", "actions": ["second_need_accepted"]}),
             HANGUP,
         ], expect={"actions": ["order_cancelled"]}),
]


# --- audio ---------------------------------------------------------------------------------------------------
def espeak(text: str, voice: Voice, speed: int | None = None) -> AudioFrame:
    """Synthesise with the espeak-ng CLI; leading/trailing silence trimmed."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        cmd = ["espeak-ng", "-v", voice.variant, "-s", str(speed or voice.speed), "-p", str(voice.pitch),
               "-a", str(voice.amplitude), "-w", f.name, text]
        subprocess.run(cmd, check=True, capture_output=True)
        data, rate = sf.read(f.name, dtype="int16")
    frame = AudioFrame.from_numpy(data, rate)
    x = np.abs(frame.to_numpy().astype(np.int32))
    loud = np.flatnonzero(x > 200)
    if len(loud):
        frame = AudioFrame.from_numpy(frame.to_numpy()[loud[0] : loud[-1] + 1], rate)
    return frame


def pad(frame: AudioFrame) -> AudioFrame:
    lead = np.zeros(int(LEAD_S * frame.sample_rate), np.int16)
    tail = np.zeros(int(TAIL_S * frame.sample_rate), np.int16)
    return AudioFrame.from_numpy(np.concatenate([lead, frame.to_numpy(), tail]), frame.sample_rate)


def telephone(frame: AudioFrame) -> AudioFrame:
    """8 kHz through a G.711 mu-law round trip (what a SIP caller's audio has been through)."""
    narrow = resample(frame, g711.G711_RATE)
    return g711.ulaw_decode(g711.ulaw_encode(narrow))


def noise_bed(name: str, rate: int, seconds: float = 8.0) -> np.ndarray:
    """Street-like noise: pink noise plus slow rumble, from an RNG seeded by the fixture name. float32, RMS 1."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    n = int(seconds * rate)
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n, 1 / rate)
    spec[1:] /= np.sqrt(freqs[1:] / freqs[1])  # 1/f power: pink
    spec[freqs < 60] = 0
    pink = np.fft.irfft(spec, n)
    t = np.arange(n) / rate
    rumble = 0.5 * np.sin(2 * np.pi * 0.3 * t) * rng.standard_normal(n).cumsum() / np.sqrt(n)
    x = pink + 0.3 * rumble
    fade = int(0.05 * rate)  # loop seam
    x[:fade] *= np.linspace(0, 1, fade)
    x[-fade:] *= np.linspace(1, 0, fade)
    return (x / np.sqrt(np.mean(x**2))).astype(np.float32)


def write_clip(path: Path, frame: AudioFrame, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if line == "telephone":
        sf.write(str(path), frame.to_numpy(), frame.sample_rate, format="WAV", subtype="ULAW")
    else:
        sf.write(str(path), frame.to_numpy(), frame.sample_rate, format="FLAC", subtype="PCM_16")


def build(spec: Spec, out: Path) -> None:
    ext = "wav" if spec.line == "telephone" else "flac"
    turns: list[dict] = []
    speech_rms: list[float] = []
    n = 0
    for t in spec.turns:
        t = dict(t)
        voice_name, speed = t.pop("_voice", None), t.pop("_speed", None)
        if "say" in t:
            n += 1
            voice = VOICES[voice_name or spec.voice]
            frame = pad(espeak(t["text"].replace(" ", ""), voice, speed))
            frame = telephone(frame) if spec.line == "telephone" else resample(frame, WIDEBAND_RATE)
            x = frame.to_float()
            speech_rms.append(float(np.sqrt(np.mean(x[np.abs(x) > 0.01] ** 2))))
            rel = f"audio/{spec.name}/{n:02d}.{ext}"
            write_clip(out / rel, frame, spec.line)
            t["say"] = f"../{rel}"
            t = {"say": t["say"], "text": t["text"], **{k: v for k, v in t.items() if k not in ("say", "text")}}
        turns.append(t)
    doc: dict[str, Any] = {"name": spec.name, "description": spec.description, "language": "zh-CN",
                           "caller_id": spec.caller_id, "line": spec.line, "tags": spec.tags}
    if spec.noise_snr_db is not None:
        rate = g711.G711_RATE if spec.line == "telephone" else WIDEBAND_RATE
        level = (np.median(speech_rms) if speech_rms else 0.1) / (10 ** (spec.noise_snr_db / 20))
        bed = noise_bed(spec.name, rate) * level
        frame = AudioFrame.from_numpy(bed, rate)
        if spec.line == "telephone":
            frame = g711.ulaw_decode(g711.ulaw_encode(frame))
        rel = f"audio/{spec.name}/background.{ext}"
        write_clip(out / rel, frame, spec.line)
        doc["background"] = f"../{rel}"
    if spec.greeting:
        doc["greeting"] = spec.greeting
    doc["turns"] = turns
    if spec.expect:
        doc["expect"] = spec.expect
    header = (f"# Generated by scripts/gen_fixtures.py -- edit the script, not this file.\n"
              f"# {spec.description}\n")
    path = out / "calls" / f"{spec.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=110), encoding="utf-8")


def generate(out: Path) -> list[Path]:
    for spec in SPECS:
        build(spec, out)
    return sorted(p for p in (out / "calls").glob("*.yaml"))


def _differences(a: Path, b: Path) -> list[str]:
    diffs = []
    for sub in ("calls", "audio"):
        left = {p.relative_to(a) for p in (a / sub).rglob("*") if p.is_file()}
        right = {p.relative_to(b) for p in (b / sub).rglob("*") if p.is_file()}
        diffs += [f"missing in {a}: {p}" for p in sorted(right - left)]
        diffs += [f"not generated any more: {p}" for p in sorted(left - right)]
        diffs += [f"differs: {p}" for p in sorted(left & right) if not filecmp.cmp(a / p, b / p, shallow=False)]
    return diffs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default audio_fixtures/)")
    ap.add_argument("--check", action="store_true", help="compare a fresh generation with --out; exit 1 on any difference")
    args = ap.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            diffs = _differences(args.out, Path(tmp))
        for d in diffs:
            print(d)
        print("up to date" if not diffs else f"{len(diffs)} difference(s): run scripts/gen_fixtures.py")
        return 1 if diffs else 0
    for sub in ("calls", "audio"):  # stale files of renamed fixtures must not linger
        for p in sorted((args.out / sub).rglob("*"), reverse=True) if (args.out / sub).exists() else []:
            if p.is_file() and p.suffix in (".yaml", ".flac", ".wav"):
                p.unlink()
            elif p.is_dir() and not any(p.iterdir()):
                p.rmdir()
    files = generate(args.out)
    print(f"wrote {len(files)} fixtures to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

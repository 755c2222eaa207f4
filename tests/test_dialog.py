"""Dialogue manager behaviour beyond the scripted conversations: outages, idempotent writes, barge-in, hand-off
privacy, keypad entry, robustness, and the rule that engine code holds no caller-facing language.

Real parts only: the real NLU and language pack, a real seeded SQLite shop, and for the outage a real HTTP client
talking to a TCP port nobody listens on (a real connection refusal, not a fake)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ivr.bench.ports import reserve_port
from ivr.dialog.kb import KnowledgeBase
from ivr.dialog.manager import DialogManager
from ivr.dialog.sentiment import analyse
from ivr.lang import get_pack
from ivr.services.shop import SqlShop, seed_demo

ROOT = Path(__file__).resolve().parent.parent
RETURNABLE = "100000000002"  # documented fixed demo orders (docs/oms.md, ivr.services.shop.seed.FIXED_ORDERS)
PAID = "100000000004"
UNPAID = "100000000005"


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> SqlShop:
    url = f"sqlite:///{tmp_path_factory.mktemp('shop') / 'shop.db'}"
    seed_demo(url)
    return SqlShop(url)


def _spoken(digits: str) -> str:
    return get_pack("zh-CN").say_digits(digits)


def _manager(shop, order_id: str | None = None, **kw) -> DialogManager:
    caller = shop.get_order(order_id).phone if order_id else ""
    m = DialogManager(shop, caller_id=kw.pop("caller_id", caller), **kw)
    m.start()
    return m


def _verify(m: DialogManager, order_id: str):
    """Answer the verification question with the order's phone tail (a caller ID alone never verifies)."""
    r = m.handle_text(f"尾号 {_spoken(m.shop.get_order(order_id).phone[-4:])}")
    assert "caller_verified" in r.actions, r.text
    return r


def _return_to_confirmation(m: DialogManager, order_id: str) -> None:
    r = m.handle_text(f"订单 {_spoken(order_id)} 我要退货 质量问题")
    assert r.state == "verify" and "后四位" in r.text, r.text
    r = _verify(m, order_id)
    assert r.state == "return_request.slot", r.text
    r = m.handle_dtmf("1")
    assert r.state == "return_request.confirm", r.text


def test_engine_code_has_no_caller_facing_language() -> None:
    cjk = re.compile(r"[\u4e00-\u9fff]")
    files = [p for p in (ROOT / "ivr" / "dialog").rglob("*.py") if "nlu" not in p.parts]
    files.append(ROOT / "ivr" / "cli" / "chat_cmd.py")
    files += [ROOT / "ivr" / "asr" / "endpoint.py", ROOT / "ivr" / "asr" / "listener.py"]  # endpointing words: pack
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in files
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if cjk.search(line)]
    assert not offenders, f"Chinese text in engine code (move it to the language pack): {offenders}"


def test_every_static_prompt_the_engine_names_exists() -> None:
    prompts = get_pack("zh-CN").prompts
    namespaces = {k.split(".")[0] for k in prompts if "." in k}
    named: set[str] = set()
    for p in (ROOT / "ivr" / "dialog").rglob("*.py"):
        if "nlu" not in p.parts:
            named |= set(re.findall(r'"([a-z_]+(?:\.[a-z_0-9]+)+)"', p.read_text(encoding="utf-8")))
    named = {n for n in named if n.split(".")[0] in namespaces} | {"greeting", "goodbye", "anything_else", "ok"}
    assert len(named) > 60
    missing = sorted(n for n in named if n not in prompts)
    assert not missing, f"prompt ids used in code but absent from prompts.yaml: {missing}"


def test_order_system_outage_apologises_and_offers_human_or_callback() -> None:
    from ivr.services.shop.http_oms import HttpShop

    port = reserve_port()  # a port with nothing listening: every request is refused for real
    down = HttpShop(f"http://127.0.0.1:{port}/ivr/v1", timeout_s=1.0, retries=0)
    m = _manager(down)
    r = m.handle_text(f"我的快递到哪了 订单号 {_spoken(RETURNABLE)}")
    assert "oms_unavailable" in r.actions and r.state == "oms_choice"
    assert "抱歉" in r.text and r.transfer is None and not r.end_call
    r = m.handle_dtmf("1")
    assert r.transfer is not None and r.transfer.reason == "oms_down"

    m2 = _manager(down)
    m2.handle_text(f"订单 {_spoken(RETURNABLE)} 到哪了")
    r = m2.handle_text("稍后回电吧")
    assert "callback_requested" in r.actions and r.end_call  # the ticket could not be stored; the hand-off says so
    assert m2.outcome == "callback"


def test_repeated_confirmation_never_creates_a_second_return(shop) -> None:
    order_id = "100000000008"  # delivered 10 days ago: a quality return is possible
    before = len(shop.get_order(order_id).returns)
    m = _manager(shop, order_id, call_id="call-dup-1")
    _return_to_confirmation(m, order_id)
    first = m.handle_text("是的")
    assert "return_created" in first.actions and first.barge_in is False
    rma = m.ctx.slots["rma_id"]
    assert _spoken(rma) in first.text  # read back digit by digit
    # the same call re-runs after a crash: the caller asks again and hears the existing return, nothing new
    again = _manager(shop, order_id, call_id="call-dup-1")
    r = again.handle_text(f"订单 {_spoken(order_id)} 我要退货 质量问题")
    assert r.state == "verify" and _spoken(rma) not in r.text  # the new call proves the caller again first
    r = _verify(again, order_id)
    assert "return_exists" in r.actions and _spoken(rma) in r.text
    # the write is keyed by call + flow + order + content: replaying the very same write returns the same RMA
    from ivr.dialog.flows.return_request import ReturnFlow

    again.ctx.flow, again.ctx.order = "return_request", shop.get_order(order_id)
    pickup = ReturnFlow()._pickup_value(again, "tomorrow_am")
    key = again.key("return", "quality", pickup)
    assert key.startswith("call-dup-1:return_request:" + order_id)
    replay = shop.create_return(order_id, "return", "quality", pickup, key)
    assert replay.rma_id == rma
    assert len(shop.get_order(order_id).returns) == before + 1


def test_unheard_confirmation_is_asked_again_heard_one_is_accepted(shop) -> None:
    m = _manager(shop, UNPAID)
    assert m.handle_text(f"订单 {_spoken(UNPAID)} 帮我取消").state == "verify"
    r = _verify(m, UNPAID)
    assert r.state == "cancel_order.confirm"
    m.played(r.reply_id, segments_played=len(r.segments), fraction_of_last=0.3)
    r2 = m.handle_text("好")
    assert "confirmation_repeated" in r2.actions and "order_cancelled" not in r2.actions
    m.played(r2.reply_id, segments_played=len(r2.segments), fraction_of_last=1.0)
    r3 = m.handle_text("好")
    assert "order_cancelled" in r3.actions
    assert shop.get_order(UNPAID).status == "cancelled"
    assert any(t.get("interrupted") for t in m.turns if t["who"] == "bot")


def test_handoff_is_structured_and_masks_the_caller(shop) -> None:
    order = shop.get_order(PAID)
    m = _manager(shop, PAID)
    m.handle_text(f"订单 {_spoken(PAID)} 现在什么状态")
    _verify(m, PAID)
    r = m.handle_text("转人工")
    assert r.transfer is not None and "transfer" in r.actions
    h = r.transfer.handoff
    assert {"caller", "verification", "intents", "slots", "order", "sentiment", "summary", "transcript"} <= set(h)
    assert h["verification"]["verified"] and h["verification"]["method"] == "order_and_phone_tail"
    assert h["order"]["order_id"] == PAID and "order_status" in h["intents"]
    dumped = json.dumps(h, ensure_ascii=False)
    assert order.phone not in dumped and h["caller"].startswith(order.phone[:3])
    assert order.phone[-4:] not in h["caller"] and _spoken(order.phone[-4:]) not in dumped  # the secret
    assert re.search(r"[\u4e00-\u9fff]", h["summary"]) and "\n" not in h["summary"]
    assert [t["who"] for t in h["transcript"]][:2] == ["bot", "caller"]


def test_order_number_by_keypad_in_pieces_and_phone_tail_without_hash(shop) -> None:
    m = _manager(shop)
    assert m.handle_text("查订单").state == "ask_order"
    silent = m.handle_dtmf("100000")
    assert silent.segments == [] and silent.state == "ask_order"
    r = m.handle_dtmf("000004#")
    assert r.state == "verify"
    tail = shop.get_order(PAID).phone[-4:]
    assert m.handle_dtmf(tail[:2]).segments == []
    r = m.handle_dtmf(tail[2:])
    assert "caller_verified" in r.actions and "order_read" in r.actions


@pytest.mark.parametrize("noise", ["", "   ", "🙂🙂", "a" * 2000, "#", "嗯", "？？？", "DROP TABLE orders;"])
def test_bad_input_in_any_state_gets_a_reply_never_an_exception(shop, noise) -> None:
    m = _manager(shop, RETURNABLE)
    for step in (lambda: m.handle_text(noise), lambda: m.handle_dtmf(noise), lambda: m.handle_text(noise)):
        r = step()
        assert r.text or r.end_call or r.expect == "digits"
    m2 = _manager(shop, RETURNABLE)
    m2.handle_text(f"订单 {_spoken(RETURNABLE)} 我要退货")
    for _ in range(4):
        r = m2.handle_text(noise) if noise.strip() else m2.handle_no_input()
        assert r.text


def test_keypad_only_call_reads_the_menu_and_every_main_menu_key_starts_a_task(shop) -> None:
    from ivr.dialog.policy import MENU_KEYS

    for key, intent in MENU_KEYS.items():
        m = _manager(shop, asr_available=False)
        r = m.handle_dtmf(key)
        assert r.text and r.state != "main_menu" and intent in m.ctx.intents, (key, r.text)


def test_sentiment_levels_from_the_lexicon() -> None:
    lex = get_pack("zh-CN").sentiment
    assert analyse("查一下我的订单", lex).level == "calm"
    assert analyse("怎么还没到 都等了好几天了", lex).level == "frustrated"
    angry = analyse("你们这什么破公司 骗子 气死我了 我要投诉", lex)
    assert angry.level == "angry" and angry.score <= -0.99 and "骗子" in angry.words
    assert analyse("我很不满意", lex).level != "positive"
    assert analyse("好的 谢谢 很满意", lex).level == "positive"


def test_operators_can_add_markdown_kb_entries(tmp_path) -> None:
    (tmp_path / "extra.md").write_text("## gift_wrap\nkeywords: 礼品包装, 包装纸\n可以免费礼品包装。\n", encoding="utf-8")
    kb = KnowledgeBase(tmp_path)
    assert kb.lookup("能帮我礼品包装吗").id == "gift_wrap"
    assert kb.lookup("天气").__class__ is type(None)

"""Personal offers after a served need: which offer (accessory, category coupon, restock notice), never before
verification or to an upset caller or a complainer, at most one per contact, declinable, written through the shop
once (idempotent, one coupon per customer and template), shown on the text channel with quick replies and counted
in the statistics from the records.

Real parts only: the real NLU and language pack, a real seeded SQLite shop (a fresh copy per test), the real offer
tables, the chat session and record store of the text channels, the statistics over the saved records.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from test_shop_helpers import db_url, pg_server  # noqa: F401  (fixtures)

from ivr.dialog.manager import DialogManager
from ivr.dialog.render_text import render
from ivr.lang import get_pack
from ivr.services.records import RecordStore
from ivr.services.records.period import parse_window
from ivr.services.records.stats import Filters, Stats
from ivr.services.shop import SqlShop, seed_demo
from ivr.services.shop.offers import SqlOffers, offers_for

pytestmark = pytest.mark.timeout(120)
IN_TRANSIT_PHONE = "100000000001"  # fixed demo orders (docs/oms.md): a Huawei phone on its way (customer C0000001)
SHOES = "100000000002"  # running shoes, delivered (C0000001)
AIRCON = "100000000007"  # an air conditioner, delivered (C0000002)
REFUNDED = "100000000006"  # returned and refunded (C0000002)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("offers") / "seeded.db"
    seed_demo(f"sqlite:///{path}")
    return path


@pytest.fixture
def shop(seeded, tmp_path) -> SqlShop:
    path = tmp_path / "shop.db"
    for suffix in ("", "-wal", "-shm"):  # the database and its write-ahead log
        if Path(f"{seeded}{suffix}").exists():
            shutil.copy(f"{seeded}{suffix}", f"{path}{suffix}")
    return SqlShop(f"sqlite:///{path}")


def spoken(digits: str) -> str:
    return get_pack("zh-CN").say_digits(digits)


def verified(shop: SqlShop, order_id: str, *, before: tuple[str, ...] = (), **kw) -> tuple[DialogManager, object]:
    """A caller who says ``before``, then asks for the order and gives the right phone tail: the reply after
    verification (the order read, and the offer if any)."""
    order = shop.get_order(order_id)
    m = DialogManager(shop, caller_id=order.phone, offers=kw.pop("offers", True), **kw)
    m.start()
    for line in before:
        m.handle_text(line)
    r = m.handle_text(f"查订单 {spoken(order_id)}")
    assert r.state == "verify", r.text
    r = m.handle_text(f"尾号 {spoken(order.phone[-4:])}")
    assert "caller_verified" in r.actions and "order_read" in r.actions, r.text
    return m, r


def test_a_category_coupon_after_the_order_is_read_then_issued_once(shop):
    m, r = verified(shop, AIRCON)
    assert r.state == "offer" and "offer_made:coupon" in r.actions
    assert r.text.endswith("另外，送您一张家电优惠券，满五百元减五十元，需要我发到您的账户吗？"), r.text
    r = m.handle_text("好的")
    assert {"offer_accepted:coupon", "coupon_issued"} <= set(r.actions)
    assert "优惠券已经发到您的账户，三十天内有效" in r.text and r.state == "main_menu" and "还有" in r.text
    coupons = SqlOffers(shop.url).coupons("C0000002")
    assert [(c["template"], c["amount_cents"], c["order_id"]) for c in coupons] == [("appliance_50", 5000, AIRCON)]
    assert coupons[0]["coupon_id"] == m.ctx.slots["coupon_id"]
    r = m.handle_text("没有了")
    assert r.state == "csat"  # the contact goes on as before: a served call is asked for its rating
    # the next contact of the same customer: the coupon is held, so nothing more is offered
    _, r = verified(shop, AIRCON)
    assert r.state == "main_menu" and not any(a.startswith("offer_") for a in r.actions)


def test_declining_is_a_polite_close_and_writes_nothing(shop):
    m, r = verified(shop, AIRCON)
    assert r.state == "offer"
    r = m.handle_text("不需要")
    assert "offer_declined:coupon" in r.actions and "coupon_issued" not in r.actions
    assert r.text.startswith("好的，不打扰您了。") and r.state == "main_menu"
    assert "优惠" not in r.text  # no second ask, no pressure
    assert SqlOffers(shop.url).coupons("C0000002") == []
    r = m.handle_text("查一下订单 " + spoken(AIRCON))  # the rest of the call: no offer again in this contact
    assert not any(a.startswith("offer_made") for a in r.actions)


def test_a_yes_over_an_unheard_offer_is_not_taken(shop):
    m, r = verified(shop, AIRCON)
    assert r.state == "offer"
    m.played(r.reply_id, 1, 0.3)  # the caller talked over the order details: the offer was never heard
    r = m.handle_text("好的")
    assert "confirmation_repeated" in r.actions and "coupon_issued" not in r.actions and r.state == "offer"
    assert "需要我发到您的账户吗" in r.text
    r = m.handle_text("好的")  # now heard and answered
    assert "coupon_issued" in r.actions and len(SqlOffers(shop.url).coupons("C0000002")) == 1


def test_a_new_request_instead_of_an_answer_drops_the_offer(shop):
    m, r = verified(shop, AIRCON)
    r = m.handle_text("我想开发票")
    assert "offer_declined:coupon" in r.actions and r.state.startswith("invoice"), (r.state, r.text)
    assert "不打扰" not in r.text


def test_accessory_coupon_by_keypad_without_speech(shop):
    order = shop.get_order(IN_TRANSIT_PHONE)
    m = DialogManager(shop, caller_id=order.phone, asr_available=False, offers=True)
    m.start()
    m.handle_dtmf("1")
    m.handle_dtmf(f"{IN_TRANSIT_PHONE}#")
    r = m.handle_dtmf(order.phone[-4:])
    assert r.state == "offer" and "offer_made:accessory" in r.actions
    assert "看到您买了手机，现在有一张二十元的快充充电器专享券" in r.text and r.text.endswith("需要请按1，不需要请按2。")
    r = m.handle_dtmf("1")
    assert "offer_accepted:accessory" in r.actions
    coupons = SqlOffers(shop.url).coupons("C0000001")
    assert [c["template"] for c in coupons] == ["charger_20"]


def test_restock_notice_for_what_was_asked_about(shop):
    m, r = verified(shop, SHOES, before=("戴森吸尘器还有货吗",))
    assert r.state == "offer" and "offer_made:restock" in r.actions
    assert "您问到的戴森吸尘器暂时缺货，预计" in r.text and "需要到货后短信提醒您吗" in r.text
    r = m.handle_text("好的")
    assert {"offer_accepted:restock", "restock_subscribed"} <= set(r.actions)
    assert "到货后会短信提醒您" in r.text
    offers = SqlOffers(shop.url)
    assert offers.subscriptions("C0000001") == ["AP0007"]
    # asked again in another contact: already waiting for it, so the shoes' category coupon is offered instead
    _, r = verified(shop, SHOES, before=("戴森吸尘器还有货吗",))
    assert "offer_made:coupon" in r.actions and "服饰优惠券" in r.text


@pytest.mark.parametrize("lines", [
    ("我要投诉 快递员态度很差 把东西扔门口", "是的", "查订单 {order}"),  # a complaint (ticket created)
    ("真是烦死了 我的订单 {order} 到底怎么样了",),  # frustrated (apologised to)
    ("转人工",),  # asked for a person
    ("说实话 上次的服务我有意见 查订单 {order}",),  # dissatisfaction in feedback words
])
def test_no_offer_to_a_complainer_or_an_upset_caller(shop, lines):
    order = shop.get_order(AIRCON)
    m = DialogManager(shop, caller_id=order.phone, offers=True)
    m.start()
    for line in lines:
        r = m.handle_text(line.format(order=spoken(AIRCON)))
    if m.state == "transferred":  # the request for a person was granted: nothing is offered to them either
        assert "transfer" in r.actions and m.offers.made is None
        return
    assert r.state == "verify", r.text
    r = m.handle_text(f"尾号 {spoken(order.phone[-4:])}")
    assert "order_read" in r.actions and r.state == "main_menu", r.text
    assert not any(a.startswith("offer_") for a in r.actions) and m.offers.made is None
    assert SqlOffers(shop.url).offer_for(order, []) is not None  # the shop had one: the caller's mood held it back


def test_no_offer_before_verification_or_after_final_orders_or_when_off(shop):
    # a knowledge-base answer to an unverified caller: served, but no offer
    m = DialogManager(shop, caller_id=shop.get_order(AIRCON).phone, offers=True)
    m.start()
    r = m.handle_text("运费怎么收")
    assert "kb_answer" in r.actions and r.state == "main_menu" and m.offers.made is None
    # a refunded order: nothing to offer on it
    assert SqlOffers(shop.url).offer_for(shop.get_order(REFUNDED), []) is None
    # the setting is off by default
    _, r = verified(shop, AIRCON, offers=None)
    assert r.state == "main_menu" and not any(a.startswith("offer_") for a in r.actions)


def test_accepting_is_idempotent_and_one_coupon_per_customer_and_template(db_url):  # noqa: F811
    seed_demo(db_url)
    shop = SqlShop(db_url)
    offers = offers_for(shop)
    assert isinstance(offers, SqlOffers)
    order = shop.get_order(AIRCON)
    offer = offers.offer_for(order, [])
    assert offer is not None and offer.coupon == "appliance_50"
    first = offers.accept(offer, order, "call-1:offer")
    assert offers.accept(offer, order, "call-1:offer") == first  # the same write retried
    results: list[str] = []
    threads = [threading.Thread(target=lambda k=k: results.append(offers.accept(offer, order, f"call-{k}:offer").ref))
               for k in range(2, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [first.ref] * 4  # other calls, at once: still the one coupon
    assert len(offers.coupons("C0000002")) == 1
    assert offers.offer_for(order, []) is None
    restock = offers.offer_for(order, ["苹果15什么时候有货"])
    assert restock is not None and restock.kind == "restock" and restock.sku == "PH0003"
    subs: list[str] = []
    threads = [threading.Thread(target=lambda k=k: subs.append(offers.accept(restock, order, f"r-{k}").ref))
               for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(subs)) == 1 and offers.subscriptions("C0000002") == ["PH0003"]


def test_text_channel_quick_replies_and_the_record_counts(shop, tmp_path):
    from ivr.channels.session import ChatHub

    store = RecordStore(shop.url)
    hub = ChatHub(shop=shop, store=store, secret="s" * 32, dialog_factory=lambda info: DialogManager(
        shop, caller_id=info.caller_id, channel=info.channel, call_id=info.call_id, offers=True))
    order = shop.get_order(AIRCON)
    try:
        s = hub.create("webchat")
        s.send(text=f"查订单 {AIRCON}")
        bot = s.send(text=order.phone[-4:])[-1]
        assert bot["state"] == "offer" and "需要我发到您的账户吗" in bot["text"]
        assert bot["quick_replies"] == [{"label": "好的，需要", "key": "1"}, {"label": "不需要", "key": "2"}]
        bot = s.send(key="1", label="好的，需要")[-1]
        assert "优惠券已经发到您的账户" in bot["text"] and "offer_accepted:coupon" in bot["actions"]
        s2 = hub.create("webchat")  # another customer's chat: declined
        other = shop.get_order(SHOES)
        s2.send(text=f"查订单 {SHOES}")
        assert s2.send(text=other.phone[-4:])[-1]["state"] == "offer"
        assert s2.send(key="2", label="不需要")[-1]["text"].startswith("好的，不打扰您了。")
    finally:
        hub.close_all()
    report = Stats(shop.url).report(Filters(parse_window("24h"), "chat"))
    assert (report["offers"]["offered"], report["offers"]["accepted"], report["offers"]["declined"]) == (2, 1, 1)
    assert report["offers"]["acceptance_rate"] == 0.5
    chat = next(c for c in report["by_channel"] if c["channel"] == "chat")
    assert (chat["calls"], chat["offers_made"], chat["offers_accepted"]) == (2, 2, 1)


def test_render_of_the_offer_without_keypad_words(shop):
    m, r = verified(shop, IN_TRANSIT_PHONE, asr_available=True)
    msg = render(m, r)
    assert "请按" not in msg["text"] and msg["quick_replies"][1]["label"] == "不需要"


async def test_a_keypad_voice_call_hears_the_offer_and_takes_it(monkeypatch):
    """The same offer on a real call (CallSession over LocalPort, espeak-ng, keypad because the line has no speech
    model): heard after the order, taken with key 1, written, and counted on the voice-webrtc channel."""
    import asyncio
    import dataclasses

    from ivr.call.local import LocalPort
    from ivr.call.manager import CallManager
    from ivr.call.session import SessionOptions
    from ivr.config import get_settings
    from ivr.services.shop import open_shop
    from ivr.wiring import build_parts

    monkeypatch.setenv("IVR_OFFERS", "1")  # the shop turned offers on
    get_settings.cache_clear()
    settings = get_settings()
    order = open_shop(settings).get_order(IN_TRANSIT_PHONE)
    parts = dataclasses.replace(build_parts(settings), asr_engine=None)
    calls = CallManager(settings, parts, options=SessionOptions(no_input_timeout_s=30.0, max_call_s=120.0))
    port = LocalPort(channel="webrtc")
    port.start()
    task = calls.start_call(port, calls.reserve(port.info.call_id))
    try:
        await port.wait_bot(1, quiet=False)
        port.press("1")
        await port.wait_bot(2)
        for d in f"{IN_TRANSIT_PHONE}#":
            port.press(d)
        await port.wait_bot(3)
        for d in order.phone[-4:]:
            port.press(d)
        said = (await port.wait_bot(4, timeout=120))[-1]  # the whole answer and the offer, heard to the end
        assert "核实通过" in said and "快充充电器专享券" in said and said.endswith("需要请按1，不需要请按2。"), said
        port.press("1")
        assert "优惠券已经发到您的账户" in (await port.wait_bot(5, quiet=False))[-1]
        await asyncio.sleep(0.3)
        port.caller_hangup()
        rec = await asyncio.wait_for(task, 30)
    finally:
        await port.close()
        await calls.shutdown(grace_s=1)
    actions = [a for t in rec.turns for a in t.actions]
    assert "offer_made:accessory" in actions and "offer_accepted:accessory" in actions
    assert [c["template"] for c in SqlOffers(settings.database_url).coupons(order.customer_id)] == ["charger_20"]
    report = Stats(settings.database_url).report(Filters(parse_window("24h"), "voice-webrtc"))
    voice = next(c for c in report["by_channel"] if c["channel"] == "voice-webrtc")
    assert (voice["calls"], voice["offers_made"], voice["offers_accepted"]) == (1, 1, 1)
    assert report["kpis"]["offer_acceptance_rate"] == 1.0

"""A personal offer over the messaging webhook (the real app on loopback, signed messages from the example client's
``send``, the seeded demo shop, offers turned on): the offer arrives with its two quick replies, the customer takes
it with one, the coupon is written, and the finished conversation counts under the ``webhook`` channel group."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from browser.server import serve_in_thread

from ivr.config import get_settings, load_settings
from ivr.services.records.period import parse_window
from ivr.services.records.stats import Filters, Stats
from ivr.services.shop.offers import SqlOffers

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-offers-0123456789"
ORDER = "100000000007"  # an air conditioner, delivered yesterday (FIXED_ORDERS): the appliance coupon

sys.path.insert(0, str(ROOT / "scripts"))
import webhook_client  # noqa: E402


def test_offer_over_the_webhook_is_taken_with_a_quick_reply_and_counted(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("IVR_OFFERS", "1")  # the dialogue reads the process settings
    get_settings.cache_clear()
    settings = load_settings({"data_dir": str(tmp_path / "data"), "demo_data": True, "offers": True,
                              "webhook_secrets": {"reference": SECRET}})
    with serve_in_thread(settings) as (url, app):
        def say(text: str = "", key: str = "", label: str = "") -> dict:
            payload: dict = {"message_id": uuid.uuid4().hex, "conversation_id": "wx-offer", "from": "u-offer"}
            if key:
                payload["quick_reply"] = {"key": key, "label": label}
            else:
                payload["text"] = text
            status, body, signed = webhook_client.send(url, SECRET, payload)
            assert status == 200 and signed, body
            return body

        say(f"查订单 {ORDER}")
        order = app.state.calls.parts.shop.get_order(ORDER)
        (msg,) = say(order.phone[-4:])["messages"]
        assert "核实通过" in msg["text"] and msg["text"].endswith("需要我发到您的账户吗？"), msg["text"]
        assert msg["quick_replies"] == [{"label": "好的，需要", "key": "1"}, {"label": "不需要", "key": "2"}]
        (msg,) = say(key="1", label="好的，需要")["messages"]
        assert "优惠券已经发到您的账户" in msg["text"]
        say("没有了")
        reply = say(key="5", label="5分")
        assert reply["closed"] is True  # rated: the conversation ends and its record is stored
    coupons = SqlOffers(settings.database_url).coupons(order.customer_id)
    assert [(c["template"], c["order_id"]) for c in coupons] == [("appliance_50", ORDER)]
    report = Stats(settings.database_url).report(Filters(parse_window("24h"), "webhook"))
    hook = next(c for c in report["by_channel"] if c["channel"] == "webhook")
    assert (hook["calls"], hook["containment"], hook["csat_avg"]) == (1, 1.0, 5.0)
    assert (hook["offers_made"], hook["offers_accepted"], report["offers"]["acceptance_rate"]) == (1, 1, 1.0)

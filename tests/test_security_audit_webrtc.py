"""Security audit (availability), found against the running service: ``POST /api/calls/webrtc`` is anonymous and had
no per-client limit. Eight offers whose ICE never connects (any host candidate) took all 8 lines (``max_calls``,
shared with SIP callers) for ~20 s each; the ninth caller got 503, and repeating that every 20 s kept the hotline
busy for everyone. Now one client address holds at most a quarter of ``max_calls`` web calls (at least 2); beyond
that 429 + Retry-After while other clients still get through. Loopback clients (the operator's tools, benchmarks)
are not limited (ivr/web/perclient.py)."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient
from webrtc_offer import offer_sdp

from ivr.config import load_settings
from ivr.web.app import create_app
from ivr.web.perclient import ClientShare, client_key


def test_one_client_cannot_take_every_line(tmp_path):
    sdp = asyncio.run(offer_sdp())
    app = create_app(load_settings({"data_dir": str(tmp_path / "data"), "sip_port": 0, "max_calls": 8}))
    offer = {"sdp": sdp, "type": "offer"}
    with TestClient(app, base_url="http://testserver", client=("203.0.113.5", 40000)) as a, \
            TestClient(app, base_url="http://testserver", client=("198.51.100.7", 40000)) as b:
        calls = [a.post("/api/calls/webrtc", json=offer) for _ in range(2)]  # 8 // 4
        assert [r.status_code for r in calls] == [200, 200], [r.text for r in calls]
        r = a.post("/api/calls/webrtc", json=offer)
        assert r.status_code == 429 and r.headers["Retry-After"] and r.json()["reason"] == "client_share", r.text
        other = b.post("/api/calls/webrtc", json=offer)
        assert other.status_code == 200, other.text  # somebody else still gets a line
        first = calls[0].json()
        assert a.delete(f"/api/calls/{first['call_id']}",
                        headers={"X-Call-Token": first["call_token"]}).status_code == 204
        for _ in range(50):  # the call's task ends, and its place with it
            r = a.post("/api/calls/webrtc", json=offer)
            if r.status_code != 429:
                break
            asyncio.run(asyncio.sleep(0.1))
        assert r.status_code == 200, r.text
        for c, resp in ((a, calls[1]), (a, r), (b, other)):
            c.delete(f"/api/calls/{resp.json()['call_id']}", headers={"X-Call-Token": resp.json()["call_token"]})


def test_loopback_and_unknown_clients_are_not_counted_and_ipv6_counts_by_its_slash_64():
    settings = load_settings({"sip_port": 0})
    assert client_key({"client": ("127.0.0.1", 1)}, settings) is None
    assert client_key({"client": ("::1", 1)}, settings) is None
    assert client_key({"client": ("testclient", 1)}, settings) is None
    assert client_key({"client": ("2001:db8:1:2::7", 1)}, settings) == "2001:db8:1:2::/64"
    share = ClientShare(8, 4)
    for i in range(5):
        share.add(f"c{i}", None)  # loopback: never tracked
    assert not share.full(None) and share.live == {}

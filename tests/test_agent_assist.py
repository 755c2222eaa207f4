"""Agent assist over a real warm transfer (real session, dialogue, seeded shop, desk and bridge; caller and agent
legs are in-process LocalPorts, as in test_warm_transfer). No speech model is installed in the suite, so the
caller's question is put into the bridge's transcript where the bridge's recogniser puts a final line; everything
after that (the watcher, the knowledge base, the shop read, the desktop event, the record) is the real path."""

from __future__ import annotations

import asyncio
import time
from datetime import date

import pytest
from test_warm_transfer import ORDER, Agent, _account, _manager, _verified_caller_asks_for_human, parts  # noqa: F401

from ivr.services.shop import open_shop, policy_from_settings
from ivr.web.assist import Assistant, order_facts

pytestmark = pytest.mark.timeout(180)


class _AppState:  # what the assistant reads from app.state
    def __init__(self, settings, calls) -> None:
        self.settings, self.calls = settings, calls


async def test_return_window_suggestion_reaches_the_agent_within_a_second(parts):  # noqa: F811
    m = _manager(parts)
    await m.start()
    assistant = Assistant(_AppState(m.settings, m))
    watcher = asyncio.create_task(assistant.run())
    agent = Agent(m.desk, _account(1))
    port, task = await _verified_caller_asks_for_human(m)
    offer = await agent.next("offer")
    leg = agent.accept(offer)
    await agent.next("connected")
    first = await agent.next("assist", timeout=5)  # the order facts come with the call
    assert [s["kind"] for s in first["suggestions"]] == ["order"]
    facts = first["suggestions"][0]
    assert facts["order_id"] == ORDER and "已签收" in facts["text"] and "可退金额" in facts["text"]
    assert "七天无理由退货" in facts["text"] and set(facts["return_windows"]) == {"no_reason", "quality"}

    bridge = m.transfer_hook.bridges[port.info.call_id]
    t0 = time.monotonic()
    bridge.transcript.append({"who": "caller", "text": "这个东西七天无理由能退吗", "at": time.time()})
    ev = await agent.next("assist", timeout=1.0)
    assert time.monotonic() - t0 < 1.0
    kb = ev["suggestions"][0]
    assert kb["id"] == "kb:seven_day_return" and "七天" in kb["text"] and kb["heard"] == "这个东西七天无理由能退吗"
    assert [x["kind"] for x in ev["suggestions"]] == ["kb", "flow", "order"]
    flow = ev["suggestions"][1]  # the return flow's next step, from the bot's NLU and the order's windows
    assert flow["id"] == "flow:return_request" and flow["actions"] == ["create_return"]
    assert flow["text"].startswith("七天无理由可办理") and "创建退货" in flow["text"]
    # a line that matches nothing new sends nothing
    bridge.transcript.append({"who": "agent", "text": "您好，我帮您看一下", "at": time.time()})
    with pytest.raises(TimeoutError):
        await agent.next("assist", timeout=0.8)

    leg.caller_hangup()
    rec = await asyncio.wait_for(task, 30)
    watcher.cancel()
    await port.close()
    await leg.close()
    assert rec.extra["assist"]["shown"] == ["order", "kb:seven_day_return", "flow:return_request"]
    await m.shutdown(grace_s=1)


def test_order_facts_by_hand(parts):  # noqa: F811
    settings, _ = parts
    shop, policy = open_shop(settings), policy_from_settings(settings)
    o = shop.get_order(ORDER)
    delivered = policy.local_date(o.shipment.delivered_at)
    f = order_facts(shop, policy, ORDER, today=delivered)
    refunded = sum(r.amount_cents for r in o.refunds if r.status != "rejected")
    assert f["refundable_cents"] == o.total_cents - refunded
    assert f["return_windows"]["no_reason"]["open"] and f["return_windows"]["quality"]["open"]
    late = date.fromordinal(delivered.toordinal() + policy.return_days + 1)
    f = order_facts(shop, policy, ORDER, today=late)
    assert not f["return_windows"]["no_reason"]["open"] and f["return_windows"]["quality"]["open"]
    assert "七天无理由退货：已过期" in f["text"]
    assert order_facts(shop, policy, "999999999999") is None


def test_assist_api_needs_the_agent_on_the_call(tmp_path):
    import httpx
    from browser.server import serve_in_thread

    from ivr.config import load_settings
    from ivr.services.agents import AccountStore
    from ivr.services.migrate import ensure_schema

    settings = load_settings({"data_dir": str(tmp_path / "d")})
    ensure_schema(settings.database_url)
    AccountStore(settings.database_url).add("wang.li", role="agent", password="desk-pass-1")
    with serve_in_thread(settings) as (url, _app), httpx.Client(base_url=url, timeout=30) as c:
        assert c.get("/api/agent/calls/nope/assist").status_code == 401
        assert c.post("/api/login", json={"username": "wang.li", "password": "desk-pass-1"}).is_success
        r = c.get("/api/agent/calls/nope/assist")
        assert r.status_code == 404 and "nope" in r.json()["error"]
        assert c.post("/api/agent/calls/nope/assist/kb:x/used", json={}).status_code == 404


async def test_a_question_asked_before_the_transfer_is_suggested_when_the_agent_answers(parts):  # noqa: F811
    """The caller asks the bot about the return window (real speech, reference transcript: no Mandarin model here),
    then asks for a human: the agent's first suggestions already answer it (from the hand-off transcript)."""
    from audio_gen import synth

    from ivr.call.local import LocalPort

    m = _manager(parts)
    await m.start()
    assistant = Assistant(_AppState(m.settings, m))
    watcher = asyncio.create_task(assistant.run())
    agent = Agent(m.desk, _account(2))
    port = LocalPort(channel="webrtc")
    port.start()
    task = m.start_call(port, m.reserve(port.info.call_id), asr_mode="reference")
    await port.wait_bot(1, quiet=False)
    port.press("1")
    await port.wait_bot(2, quiet=False)
    for d in ORDER + "#":
        port.press(d)
    await port.wait_bot(3, quiet=False)
    for d in "8000":
        port.press(d)
    n = len(await port.wait_bot(4))
    for text in ("七天无理由退货到哪天截止", "转人工"):
        port.reference(text)
        port.say(synth(text))
        n = len(await port.wait_bot(n + 1, timeout=60, quiet=False))
        await asyncio.sleep(2.5)
    leg = agent.accept(await agent.next("offer", timeout=60))
    await agent.next("connected")
    ev = await agent.next("assist", timeout=5)
    by_id = {s["id"]: s for s in ev["suggestions"]}
    assert "kb:seven_day_return" in by_id and by_id["kb:seven_day_return"]["heard"] == "七天无理由退货到哪天截止"
    assert by_id["order"]["return_windows"]["no_reason"]["open"], by_id["order"]
    assert by_id["flow:return_request"]["actions"] == ["create_return"]  # "转人工" is no task: the question is
    leg.caller_hangup()
    await asyncio.wait_for(task, 30)
    watcher.cancel()
    await port.close()
    await leg.close()
    await m.shutdown(grace_s=1)

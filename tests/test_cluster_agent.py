"""Acceptance (issue 16): an agent logged in through node A takes a caller held by node B, on a real local cluster
(2 `ivr serve` nodes, PostgreSQL, Redis, Kamailio, HAProxy: ivr/cluster/local.py).

The agent (real headless Chromium, desktop /agent of node1, a fake microphone playing 1700 Hz beeps) goes available;
the caller (real Chromium, softphone /phone of node2, 900 Hz beeps) asks for a person (key 0). Node1's desktop rings
with node2's caller and its card, the agent accepts: the agent's WebRTC leg is made by node2, which holds the call
and bridges it. Each browser hears the other's tone (measured in the page), node2's desk events (connected, caller
hang-up, call ended) reach the desktop on node1, the agent files the wrap-up there, and the record (written by
node2, in PostgreSQL) shows the agent and the disposition."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
import pytest
from test_agent_browser import _TONE_JS, AGENT_HZ, CALLER_HZ, _beeps, _browser, _phone, _until

from ivr.cluster.local import LocalCluster
from ivr.services.agents import AccountStore
from ivr.web.callaccess import record_headers

pytestmark = [pytest.mark.slow, pytest.mark.realtime, pytest.mark.timeout(600)]
PASSWORD = "Cluster-desk-2026"


async def test_an_agent_on_node1_takes_a_caller_held_by_node2(tmp_path):
    from playwright.async_api import async_playwright

    env = {"IVR_TTS_SPEED": "450", "IVR_AGENT_RING_TIMEOUT_S": "60", "IVR_QUEUE_MAX_WAIT_S": "120",
           "IVR_SIP_SESSION_EXPIRES": "0"}
    caller_wav = _beeps(tmp_path / "caller.wav", CALLER_HZ)
    agent_wav = _beeps(tmp_path / "agent.wav", AGENT_HZ)
    phone_state, desk_state = "JSON.stringify(window.ivrPhone)", "JSON.stringify(window.ivrDesk)"
    with LocalCluster(tmp_path / "cluster", node_env=env) as c:
        accounts = AccountStore(c.db_url)
        accounts.add("wang.li", role="agent", password=PASSWORD, display_name="王丽", skills=["orders"])
        accounts.add("boss", role="supervisor", password=PASSWORD)
        node1, node2 = (n.url for n in c.nodes)
        async with async_playwright() as pw, _browser(pw, agent_wav, tmp_path / "agent") as agent, \
                _browser(pw, caller_wav, tmp_path / "caller") as caller:
            await agent.goto(f"{node1}/agent")
            await agent.fill("input[name=username]", "wang.li")
            await agent.fill("input[name=password]", PASSWORD)
            await agent.click("button[type=submit]")
            await agent.wait_for_url(f"{node1}/agent")
            await _until(agent, "window.ivrDesk.eventSource && window.ivrDesk.eventSource.readyState === 1", 10,
                         "the event stream", desk_state)
            await agent.click("#available")
            await _until(agent, "window.ivrDesk.presence === 'available'", 10, "available", desk_state)
            async with httpx.AsyncClient(timeout=10) as http:  # node2 sees node1's agent in the shared presence
                r = await http.post(f"{node2}/api/login", json={"username": "boss", "password": PASSWORD})
                assert r.status_code == 200, r.text
                seen = {}
                for _ in range(50):
                    seen = (await http.get(f"{node2}/api/cluster")).json()["presence"]
                    if seen:
                        break
                    await asyncio.sleep(0.2)
                assert list(seen.values()) == [{"node": "node1", "presence": "available"}], seen

            # the caller, on node2, asks for a person
            await caller.goto(f"{node2}/phone")
            await caller.click("#call")
            await _until(caller, _phone("l.who === 'bot'"), 30, "the greeting", phone_state)
            await caller.click(".keypad button[data-key='0']")
            await _until(caller, _phone("l.text.includes('人工')"), 20, "transfer line", phone_state)
            call_id = await caller.evaluate("window.ivrPhone.callId")

            # node1's desktop rings with node2's caller and the card
            await _until(agent, "window.ivrDesk.presence === 'ringing'", 20, "ringing", desk_state)
            assert await agent.evaluate("window.ivrDesk.offer.call_id") == call_id
            assert await agent.evaluate("window.ivrDesk.context.call_id") == call_id  # node2's hand-off context
            assert not await agent.is_hidden("#card")
            lines = await agent.evaluate("window.ivrDesk.lines")  # the bot part of the call, from node2
            assert any(x["who"] == "bot" for x in lines) and any(x["who"] == "caller" and "0" in x["text"]
                                                                for x in lines), lines
            await agent.click("#accept")
            await _until(agent, "window.ivrDesk.presence === 'busy'", 20, "on call", desk_state)
            await _until(caller, _phone("l.text.includes('已为您接通')"), 40, "connected line", phone_state)
            await _until(agent, "document.getElementById('callstate').textContent.includes('已播报摘要')", 10,
                         "node2's 'connected' event on node1's desktop", desk_state)

            # each browser hears the other side: the agent's audio goes to node2, which holds the call
            await asyncio.sleep(3.0)
            heard_by_agent, heard_by_caller = await asyncio.gather(
                agent.evaluate(_TONE_JS, {"id": "remote", "hz": CALLER_HZ, "ms": 5000}),
                caller.evaluate(_TONE_JS, {"id": "remote", "hz": AGENT_HZ, "ms": 5000}),
            )
            assert heard_by_agent["hit"] >= 3 and heard_by_agent["hit"] >= heard_by_agent["loud"] * 0.5, heard_by_agent
            assert heard_by_caller["hit"] >= 3 and heard_by_caller["hit"] >= heard_by_caller["loud"] * 0.5, \
                heard_by_caller

            # hold from node1's desktop reaches node2's bridge (forwarded), and back
            await agent.click("#hold")
            await _until(agent, "window.ivrDesk.held === true", 10, "on hold", desk_state)
            await agent.click("#hold")
            await _until(agent, "window.ivrDesk.held === false", 10, "off hold", desk_state)

            await caller.click("#hangup")
            await _until(agent, "window.ivrDesk.presence === 'wrap_up'", 15, "wrap-up after the caller left",
                         desk_state)
            assert any(x["text"] == "客户已挂机" for x in await agent.evaluate("window.ivrDesk.lines"))
            await _until(agent, "window.ivrDesk.legClosed === true", 10, "the agent's leg closed", desk_state)
            await agent.reload()  # a reloaded desktop on node1 still has node2's call for the wrap-up, with its card
            await _until(agent, "window.ivrDesk.eventSource && window.ivrDesk.eventSource.readyState === 1", 10,
                         "the event stream again", desk_state)
            assert await agent.evaluate("[window.ivrDesk.presence, window.ivrDesk.callId]") == ["wrap_up", call_id]
            assert await agent.evaluate("window.ivrDesk.context && window.ivrDesk.context.call_id") == call_id
            await agent.select_option("#disposition", "resolved")
            await agent.fill("#note", "跨节点接听，已处理")
            await agent.click("#wrapup button[type=submit]")
            await _until(agent, "window.ivrDesk.presence === 'available'", 10, "available again", desk_state)

        async with httpx.AsyncClient(timeout=10) as http:  # the record node2 wrote, read through node1
            rec = {}
            for _ in range(50):
                r = await http.get(f"{node1}/api/calls/{call_id}",
                                   headers=record_headers(SimpleNamespace(secret_key=c.secret), call_id))
                rec = r.json() if r.status_code == 200 else {}
                if rec.get("outcome") not in (None, "in_progress"):
                    break
                await asyncio.sleep(0.2)
        log2 = (c.root / "node2" / "serve.log").read_text(errors="replace")
    assert rec["outcome"] == "transferred" and rec["transfer_reason"] == "human_request", rec
    assert rec["agent_id"].startswith("ag_") and rec["extra"]["agents"] == ["wang.li"], rec
    assert rec["disposition"] == "resolved" and rec["agent_note"] == "跨节点接听，已处理", rec
    assert f"call {call_id} accepted by agent wang.li of node node1" in log2

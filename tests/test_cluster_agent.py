"""Acceptance (issue 16): an agent logged in through node A takes a caller held by node B, on a real local cluster
(2 `ivr serve` nodes, PostgreSQL, Redis, Kamailio, HAProxy: ivr/cluster/local.py).

The agent (real headless Chromium, desktop /agent of node1, a fake microphone playing 1700 Hz beeps) goes available;
the caller (real Chromium, softphone /phone of node2, 900 Hz beeps) asks for a person (key 0). Node1's desktop rings
with node2's caller and its card, the agent accepts: the agent's WebRTC leg is made by node2, which holds the call
and bridges it. Each browser hears the other's tone (measured in the page), node2's desk events (connected, caller
hang-up, call ended) reach the desktop on node1, the agent files the wrap-up there, and the record (written by
node2, in PostgreSQL) shows the agent and the disposition. An agent of node1 with a SIP desk phone (real sipp)
takes a caller of node2 the same way: node2 dials the phone and bridges it."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import httpx
import pytest
from test_agent_browser import _TONE_JS, AGENT_HZ, CALLER_HZ, _beeps, _browser, _phone, _until
from test_agent_phone import _tone

from ivr.cluster.local import LocalCluster
from ivr.services.agents import AccountStore
from ivr.telephony.webrtc.client import WebRtcClient
from ivr.web.callaccess import record_headers

pytestmark = [pytest.mark.slow, pytest.mark.live, pytest.mark.timeout(600)]
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
                for headers in ({}, {"X-Ivr-Cluster-Auth": "0" * 64}):  # only a node of the cluster may ask
                    r = await http.post(f"{node2}/api/cluster/agent/accept", headers=headers,
                                        json={"call_id": "x", "claim": "node1:x", "node": "node1", "sdp": "", "type": "offer",
                                              "agent": {"agent_id": "ag_x"}})
                    assert r.status_code == 403, r.text

            # the caller, on node2, asks for a person
            await caller.goto(f"{node2}/phone")
            await caller.click("#call")
            await _until(caller, _phone("l.who === 'bot'"), 30, "the greeting", phone_state)
            await caller.click(".keypad button[data-key='0']")
            await _until(caller, _phone("l.text.includes('人工')"), 20, "transfer line", phone_state)
            call_id = await caller.evaluate("window.ivrPhone.callId")

            # node1's desktop rings with node2's caller and the card
            await _until(agent, "window.ivrDesk.presence === 'ringing' && !!window.ivrDesk.offer", 20, "ringing", desk_state)
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


async def test_an_agent_on_node1_takes_a_caller_of_node2_on_a_sip_desk_phone(tmp_path):
    """The desk phone (real sipp UAS echoing RTP) is dialled by node2, which holds the call: the caller (an aiortc
    WebRTC client on node2) hears its own tone come back through the agent's leg."""
    from tests.sip.peers import free_port

    phone_port, phone_media = free_port(), free_port(even=True)
    env = {"IVR_TTS_SPEED": "450", "IVR_AGENT_RING_TIMEOUT_S": "30", "IVR_SIP_SESSION_EXPIRES": "0"}
    phone = await asyncio.create_subprocess_exec(
        "sipp", "-sn", "uas", "-rtp_echo", "-m", "1", "-p", str(phone_port), "-i", "127.0.0.1",
        "-mp", str(phone_media), "-nostdin", "-timeout", "200s", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    client = WebRtcClient()
    try:
        with LocalCluster(tmp_path / "cluster", node_env=env) as c:
            AccountStore(c.db_url).add("desk9", password=PASSWORD, sip_uri=f"sip:1009@127.0.0.1:{phone_port}")
            node1, node2 = (n.url for n in c.nodes)
            async with httpx.AsyncClient(base_url=node1, timeout=60) as http:
                assert (await http.post("/api/login", json={"username": "desk9", "password": PASSWORD})
                        ).status_code == 200
                assert (await http.post("/api/agent/presence", json={"state": "available"})).status_code == 200
                await asyncio.sleep(2.5)  # node2 sees node1's agent (one sync round each)
                await client.call(node2)
                await client.wait_for(lambda: client.bot_lines(), 30, "greeting")
                await asyncio.sleep(1.0)
                client.press("0")  # a human, please
                offer = None
                for _ in range(150):
                    offer = (await http.get("/api/agent/state")).json()["offer"]
                    if offer:
                        break
                    await asyncio.sleep(0.2)
                assert offer and offer["call_id"] == client.call_id, (offer, client.bot_lines())
                r = await http.post(f"/api/agent/offers/{offer['offer_id']}/accept", json={"via": "sip"})
                assert r.status_code == 200 and r.json() == {"via": "sip", "call_id": client.call_id}, r.text
                await client.wait_for(lambda: any("已为您接通" in x for x in client.bot_lines()), 40, "connected")
                await asyncio.sleep(3.5)  # the connected line has been played
                spoke_at = time.monotonic()
                client.say(_tone(3.0))
                echoed = 0
                # 1 s of a 3 s tone back within 10 s: the path, not its speed, is tested (under CI load a 2 s tone
                # once came back with 32 of its 100 frames loud: not reproduced alone or beside 3 busy loops)
                for _ in range(50):
                    await asyncio.sleep(0.2)
                    echoed = len(client.voiced(-40, after=spoke_at))
                    if echoed >= 50:
                        break
                assert echoed >= 50, f"the caller did not hear the desk phone's leg ({echoed} loud frames)"
                assert (await http.get("/api/agent/state")).json()["agent"]["presence"] == "busy"
                await client.hangup()
                presence = ""
                for _ in range(75):
                    presence = (await http.get("/api/agent/state")).json()["agent"]["presence"]
                    if presence == "wrap_up":
                        break
                    await asyncio.sleep(0.2)
                assert presence == "wrap_up"
            out, _ = await asyncio.wait_for(phone.communicate(), 30)  # node2's BYE ended sipp's one call
            assert phone.returncode == 0, out.decode("utf-8", "replace")[-2000:]
            log2 = (c.root / "node2" / "serve.log").read_text(errors="replace")
        assert f"call {client.call_id} accepted by agent desk9 of node node1" in log2
    finally:
        await client.close()
        if phone.returncode is None:
            phone.kill()
            await phone.wait()

"""Warm transfer with real parts: the call session (webrtcvad, espeak-ng, the real dialogue over the seeded SQLite
shop), the real ACD desk and the warm-transfer workflow. Caller and agent audio legs are in-process LocalPorts
(their far ends are this test); the browser version of the same flow is tests/test_agent_browser.py."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import numpy as np
import pytest
from audio_gen import synth

from ivr.audio.frames import AudioFrame, frames_of
from ivr.call.local import LocalPort
from ivr.call.manager import CallManager, CallParts
from ivr.call.session import SessionOptions
from ivr.config import load_settings
from ivr.events import Hangup
from ivr.lang import get_pack
from ivr.services.agents import Account
from ivr.services.agents.desk import AgentDesk, DeskOptions
from ivr.wiring import build_parts, warm_transfer_for

pytestmark = pytest.mark.timeout(180)
PACK = get_pack("zh-CN")
ORDER, TAIL = "100000000002", "8000"  # fixed demo order of 张伟 (docs/oms.md)


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> tuple:
    # the bot speaks at espeak-ng's fastest: the callers here wait through every prompt before the transfer, and
    # these tests are about the queue, the desk and the legs, not the speech rate
    settings = load_settings({"data_dir": str(tmp_path_factory.mktemp("warm")), "tts_speed": 450, "demo_data": True})
    return settings, build_parts(settings)


def _manager(parts, **settings_update) -> CallManager:
    settings, base = parts
    settings = settings.model_copy(update={"queue_max_wait_s": 30.0, "agent_ring_timeout_s": 10.0, **settings_update})
    p: CallParts = dataclasses.replace(base, asr_engine=None)
    hook = warm_transfer_for(settings, p)
    return CallManager(settings, p, transfer_hook=hook,
                       options=SessionOptions(no_input_timeout_s=60.0, max_call_s=170.0))


def _account(n: int, skills: tuple[str, ...] = ("orders",)) -> Account:
    return Account(f"ag_test{n}", f"agent{n}", f"客服{n}", "agent", skills)


class Agent:
    """A scripted agent using the desk exactly as the desktop API does (subscribe, available, accept/decline)."""

    def __init__(self, desk: AgentDesk, account: Account) -> None:
        self.desk, self.account = desk, account
        desk.sign_in(account)
        self.events = desk.subscribe(account.agent_id)
        desk.set_presence(account.agent_id, "available")
        self.leg: LocalPort | None = None

    async def next(self, kind: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            ev = await asyncio.wait_for(self.events.get(), max(0.01, deadline - time.monotonic()))
            if ev.get("type") == kind:
                return ev

    def accept(self, offer: dict) -> LocalPort:
        self.leg = LocalPort(channel="agent")
        self.leg.start()
        self.desk.accept(self.account.agent_id, offer["offer_id"], self.leg)
        return self.leg

    @property
    def presence(self) -> str:
        return self.desk.agents[self.account.agent_id].presence


async def _verified_caller_asks_for_human(m: CallManager) -> tuple[LocalPort, asyncio.Task]:
    port = LocalPort(channel="webrtc")  # withheld number: the bot asks for the order and the phone tail
    port.start()
    task = m.start_call(port, m.reserve(port.info.call_id))
    await port.wait_bot(1, quiet=False)
    port.press("1")  # order status: order number, verified by the phone's last four digits
    await port.wait_bot(2, quiet=False)
    for d in ORDER + "#":  # keyed while the prompt plays: the first key stops it
        port.press(d)
    await port.wait_bot(3, quiet=False)
    for d in TAIL:
        port.press(d)
    await port.wait_bot(4, quiet=False)
    await asyncio.sleep(2.0)
    port.press("0")  # human agent (the key cuts the long menu short, as callers do)
    return port, task


def _tone(hz: float, seconds: float, rate: int = 16000) -> AudioFrame:
    t = np.arange(int(seconds * rate)) / rate
    return AudioFrame((np.sin(2 * np.pi * hz * t) * 0.3 * 32767).astype(np.int16).tobytes(), rate)


def _heard_after(port: LocalPort, t0: float, threshold_dbfs: float = -40.0) -> float:
    """Seconds of non-silent audio the port's far end received after monotonic time t0."""
    return sum(f.duration for t, f in port.sent if t >= t0 and f.rms_dbfs() > threshold_dbfs)


async def test_agent_gets_context_whisper_and_audio_both_ways(parts):
    m = _manager(parts)
    await m.start()
    agent = Agent(m.desk, _account(1))
    port, task = await _verified_caller_asks_for_human(m)
    offer = await agent.next("offer")
    ctx = offer["context"]
    assert ctx["order"]["order_id"] == ORDER and ctx["verification"]["verified"] is True
    assert ctx["order"]["phone"] == "138****" and "13800138000" not in str(ctx)
    assert ORDER in ctx["summary"] and "已核实" in ctx["summary"]
    assert any(t["who"] == "caller" for t in ctx["transcript"]) and ctx["intents"][:1] == ["order_status"]
    assert agent.presence == "ringing"
    leg = agent.accept(offer)
    await agent.next("connected")
    # the whisper: the agent hears the summary while the caller is still on hold
    await port.wait_bot(len(port.bot_text()) + 1, quiet=False, timeout=40)  # "已为您接通人工客服，请讲。"
    assert PACK.prompt("call.transfer_connected") in port.bot_text()[-1]
    assert _heard_after(leg, 0) > 1.0, "the agent heard no whisper"
    t_bridge = time.monotonic()
    await asyncio.sleep(0.5)
    question = synth("我想问一下这个订单什么时候能到")
    voiced = sum(f.duration for f in frames_of(question) if f.rms_dbfs() > -40.0)
    port.say(question)  # caller -> agent
    await port.finish_saying()
    leg.say(_tone(440, 1.5))  # agent -> caller
    await leg.finish_saying()
    await asyncio.sleep(0.5)
    assert _heard_after(leg, t_bridge) > 0.8 * voiced, "the agent did not hear (all of) the caller"
    assert _heard_after(port, t_bridge + 1.0) > 0.8, "the caller did not hear the agent"
    line = await agent.next("transcript")  # no model here: VAD marks the utterance for the agent's screen
    assert line["who"] in ("caller", "agent") and "未识别" in line["text"]
    leg.caller_hangup()  # the agent hangs up: the call is over
    rec = await asyncio.wait_for(task, 30)
    await port.close()
    await leg.close()
    assert rec.outcome == "transferred" and rec.agent_id == "ag_test1" and rec.transfer_reason == "human_request"
    assert [t for t in rec.turns if t.kind == "agent"], "the human part is missing from the record"
    assert port.hung_up is not None and agent.presence == "wrap_up"
    stored = m.parts.store.get(rec.call_id)
    assert stored.outcome == "transferred" and stored.agent_id == "ag_test1"
    m.desk.wrapped_up("ag_test1")
    assert agent.presence == "available"
    await m.shutdown(grace_s=1)


async def test_no_agent_books_callback_with_the_whole_context(parts):
    m = _manager(parts)
    await m.start()
    port, task = await _verified_caller_asks_for_human(m)
    await port.wait_bot(7, timeout=40)  # transfer line, "nobody free", ticket read back
    said = port.bot_text()
    assert PACK.prompt("call.transfer_unavailable") in said
    booked = said[-1]
    rec = await asyncio.wait_for(task, 30)
    await port.close()
    ticket_id = rec.extra["callback_ticket"]
    assert rec.outcome == "callback" and rec.extra["callback_why"] == "no_agent"
    assert PACK.say_digits(ticket_id) in booked  # the number, digit by digit
    from ivr.services.db import transaction
    from ivr.services.shop.models import TicketRow

    with transaction(parts[0].database_url) as s:
        row = s.get(TicketRow, ticket_id)
        kind, context = row.kind, dict(row.context)
    assert kind == "callback" and context["call_id"] == rec.call_id
    handoff = context["handoff"]
    assert handoff["order"]["order_id"] == ORDER and handoff["transcript"], "the context was lost"
    await m.shutdown(grace_s=1)


async def test_decline_goes_to_the_next_agent_and_silent_agent_is_set_away(parts):
    m = _manager(parts, agent_ring_timeout_s=2.0)
    await m.start()
    a1, a2, a3 = Agent(m.desk, _account(1)), Agent(m.desk, _account(2)), Agent(m.desk, _account(3))
    m.desk.agents["ag_test2"].idle_since -= 100  # a2 idle longest, then a1, then a3
    m.desk.agents["ag_test1"].idle_since -= 50
    port, task = await _verified_caller_asks_for_human(m)
    first = await a2.next("offer")
    m.desk.decline("ag_test2", first["offer_id"])
    assert a2.presence == "available"
    second = await a1.next("offer")  # the next longest idle
    assert second["call_id"] == first["call_id"]
    # a1 lets it ring out: counts as declined, a1 is set away, a3 gets it
    third = await a3.next("offer", timeout=10)
    assert a1.presence == "away" and (await a1.next("offer_cancelled"))["reason"] == "no_answer"
    leg = a3.accept(third)
    await a3.next("connected")
    await asyncio.sleep(1.0)
    port.caller_hangup()  # the caller hangs up: the agent is told
    assert (await a3.next("caller_hangup"))["call_id"] == third["call_id"]
    rec = await asyncio.wait_for(task, 30)
    await port.close()
    await leg.close()
    assert rec.outcome == "transferred" and rec.agent_id == "ag_test3" and leg.hung_up
    assert rec.extra["queue"]["offers"] == 3  # declined, rang out, accepted
    assert a3.presence == "wrap_up"
    await m.shutdown(grace_s=1)


@pytest.mark.slow
async def test_agent_drop_puts_the_caller_back_in_the_queue(parts):
    m = _manager(parts)
    await m.start()
    a1 = Agent(m.desk, _account(1))
    port, task = await _verified_caller_asks_for_human(m)
    leg1 = a1.accept(await a1.next("offer"))
    await a1.next("connected")
    n = len(port.bot_text())
    await port.wait_bot(n + 1, quiet=False, timeout=40)  # connected
    a2 = Agent(m.desk, _account(2))  # a colleague becomes free
    leg1._inbound.put_nowait(Hangup("caller", "connection_failed", time.monotonic()))  # a1's network dies
    offer = await a2.next("offer", timeout=30)
    said = " ".join(port.bot_text()[n + 1:])
    assert PACK.prompt("call.transfer_dropped") in said, said
    assert a1.presence == "offline"
    assert offer["call_id"] == port.info.call_id and [w.requeued for w in m.desk.queue] == [1]
    leg2 = a2.accept(offer)
    await a2.next("connected")
    await asyncio.sleep(0.5)
    leg2.caller_hangup()
    rec = await asyncio.wait_for(task, 30)
    await port.close()
    await leg1.close()
    await leg2.close()
    assert rec.outcome == "transferred" and rec.agent_id == "ag_test2"
    assert rec.extra["agents"] == ["agent1", "agent2"]
    await m.shutdown(grace_s=1)


async def test_caller_hanging_up_in_the_queue_withdraws_the_offer(parts):
    m = _manager(parts, agent_ring_timeout_s=60.0)
    await m.start()
    a1 = Agent(m.desk, _account(1))
    port, task = await _verified_caller_asks_for_human(m)
    offer = await a1.next("offer")
    port.caller_hangup()  # tired of waiting while the agent's desktop rings
    rec = await asyncio.wait_for(task, 10)
    await port.close()
    cancelled = await a1.next("offer_cancelled")
    assert cancelled["offer_id"] == offer["offer_id"] and cancelled["reason"] == "caller_left"
    assert m.desk.queue == [] and a1.presence == "available"
    assert rec.ended_by == "caller" and rec.outcome == "abandoned" and rec.extra["abandoned_in_transfer"]
    await m.shutdown(grace_s=1)


@pytest.mark.slow
async def test_nobody_answering_within_the_maximum_wait_books_a_callback(parts):
    m = _manager(parts, agent_ring_timeout_s=1.0, queue_max_wait_s=6.0)
    await m.start()
    a1 = Agent(m.desk, _account(1))  # signed in, but lets it ring out: set away, nobody else
    port, task = await _verified_caller_asks_for_human(m)
    await a1.next("offer")
    assert (await a1.next("offer_cancelled", timeout=10))["reason"] == "no_answer"
    rec = await asyncio.wait_for(task, 60)
    await port.close()
    assert a1.presence == "away"
    assert rec.outcome == "callback" and rec.extra["callback_why"] == "timeout"
    assert rec.extra["queue"]["waited_s"] >= 5.0
    said = port.bot_text()
    assert PACK.prompt("call.transfer_timeout") in said and PACK.say_digits(rec.extra["callback_ticket"]) in said[-1]
    await m.shutdown(grace_s=1)


async def test_angry_and_vip_callers_jump_the_queue():
    desk = AgentDesk(DeskOptions(ring_timeout_s=30))
    calm1 = desk.enqueue("calm1", skill="orders", priority=0)
    calm2 = desk.enqueue("calm2", skill="orders", priority=0)
    angry = desk.enqueue("angry", skill="orders", priority=2)
    assert [desk.position(w) for w in (angry, calm1, calm2)] == [1, 2, 3]
    assert desk.expected_wait_s(calm2) > desk.expected_wait_s(calm1) > 0
    agent = Agent(desk, _account(1))
    offer = await agent.next("offer")
    assert offer["call_id"] == "angry"
    agent.accept(offer)
    assert [desk.position(w) for w in (angry, calm1, calm2)] == [0, 1, 2]
    desk.leave(calm1)  # hung up while waiting
    assert desk.position(calm2) == 1 and desk.queue == [calm2]


async def test_skills_route_first_and_overflow_to_anyone():
    desk = AgentDesk(DeskOptions(ring_timeout_s=30))
    general = Agent(desk, _account(1, skills=("orders",)))
    desk.agents["ag_test1"].idle_since -= 100  # idle longest, but without the skill
    returns = Agent(desk, _account(2, skills=("returns",)))
    desk.enqueue("r1", skill="returns")
    assert (await returns.next("offer"))["call_id"] == "r1"
    desk.enqueue("r2", skill="returns")  # the returns agent is ringing: overflow to the other one
    assert (await general.next("offer"))["call_id"] == "r2"


async def test_vip_callers_prefer_vip_agents():
    desk = AgentDesk(DeskOptions(ring_timeout_s=30))
    plain = Agent(desk, _account(1, skills=("orders",)))
    desk.agents["ag_test1"].idle_since -= 100  # idle longest
    vip_desk = Agent(desk, _account(2, skills=("orders", "vip")))
    desk.enqueue("v1", skill="orders", priority=1, vip=True)
    assert (await vip_desk.next("offer"))["call_id"] == "v1"
    desk.enqueue("p1", skill="orders")
    assert (await plain.next("offer"))["call_id"] == "p1"


async def test_callers_go_to_agents_who_speak_their_language():
    desk = AgentDesk(DeskOptions(ring_timeout_s=30))
    mandarin = Agent(desk, _account(1, skills=("orders", "zh-CN")))
    desk.agents["ag_test1"].idle_since -= 100  # idle longest
    english = Agent(desk, _account(2, skills=("orders", "en-US")))
    desk.enqueue("en1", skill="orders", language="en-US")
    assert (await english.next("offer"))["call_id"] == "en1"
    desk.enqueue("zh1", skill="orders", language="zh-CN")
    assert (await mandarin.next("offer"))["call_id"] == "zh1"


async def test_outside_service_hours_books_a_callback(parts):
    now = time.gmtime()
    closed = f"{(now.tm_hour + 8 + 2) % 24:02d}:00-{(now.tm_hour + 8 + 3) % 24:02d}:00"  # Asia/Shanghai = UTC+8
    m = _manager(parts, service_hours=closed)
    await m.start()
    Agent(m.desk, _account(1))
    port, task = await _verified_caller_asks_for_human(m)
    rec = await asyncio.wait_for(task, 60)
    await port.close()
    assert rec.outcome == "callback" and rec.extra["callback_why"] == "closed"
    assert any(closed in line for line in port.bot_text())
    await m.shutdown(grace_s=1)

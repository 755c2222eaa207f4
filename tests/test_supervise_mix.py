"""Listen / whisper / barge mixing on a real warm-transfer bridge (real session, dialogue, desk and relay, as in
test_warm_transfer), with in-process audio legs for the caller (900 Hz), the agent (1700 Hz) and the supervisor
(2500 Hz): what each end receives is checked per 20 ms frame in those bands. The browser version is
tests/test_supervise_browser.py."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from test_warm_transfer import Agent, _account, _manager, _tone, _verified_caller_asks_for_human, parts  # noqa: F401

from ivr.call.local import LocalPort
from ivr.call.supervise import Supervision

pytestmark = pytest.mark.timeout(180)
CALLER_HZ, AGENT_HZ, SUP_HZ = 900.0, 1700.0, 2500.0


def _share(port: LocalPort, t0: float, hz: float) -> float:
    """Share of the frames ``port``'s far end received since ``t0`` whose ``hz`` band is above -40 dBFS."""
    frames = [f for t, f in list(port.sent) if t >= t0]
    assert len(frames) > 40, f"only {len(frames)} frames arrived"
    hits = 0
    for f in frames:
        a = f.to_float()
        w = np.hanning(len(a))
        spec = np.abs(np.fft.rfft(a * w)) * 2 / w.sum()
        k = int(round(hz * len(a) / f.sample_rate))
        hits += spec[max(0, k - 1):k + 2].max() > 0.01
    return hits / len(frames)


async def _window(seconds: float = 1.5) -> float:
    await asyncio.sleep(0.4)  # what was queued before the change has played out
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    return t0


async def test_listen_whisper_barge(parts):  # noqa: F811
    m = _manager(parts, whisper_summary=False)
    await m.start()
    agent = Agent(m.desk, _account(1))
    port, task = await _verified_caller_asks_for_human(m)
    leg = agent.accept(await agent.next("offer"))
    await agent.next("connected")
    bridge = m.transfer_hook.bridges[port.info.call_id]
    while not bridge.relaying:
        await asyncio.sleep(0.05)
    port.say(_tone(CALLER_HZ, 20.0))
    leg.say(_tone(AGENT_HZ, 20.0))
    sup_leg = LocalPort(channel="supervisor")
    sup_leg.start()
    sup_leg.say(_tone(SUP_HZ, 20.0))
    changes: list[tuple[str, str]] = []
    record = m.sessions[bridge.call_id].record
    sup = Supervision(bridge.call_id, "lead", sup_leg, "listen", on_change=lambda e, mode: changes.append((e, mode)),
                      record=record)
    bridge.supervisors.append(sup)
    sup.note("join")
    running = asyncio.create_task(sup.run(bridge.ended))
    # a second supervisor whose own task never gets to run (the worst case of a call ending under a supervisor):
    # its leave must still be in the record the call saves
    stalled_leg = LocalPort(channel="supervisor")
    stalled = Supervision(bridge.call_id, "lead2", stalled_leg, "listen", record=record)
    bridge.supervisors.append(stalled)
    stalled.note("join")

    t0 = await _window()
    assert _share(sup_leg, t0, CALLER_HZ) > 0.9 and _share(sup_leg, t0, AGENT_HZ) > 0.9  # hears both sides
    assert _share(leg, t0, SUP_HZ) < 0.05 and _share(port, t0, SUP_HZ) < 0.05  # nobody hears the supervisor
    assert _share(leg, t0, CALLER_HZ) > 0.9 and _share(port, t0, AGENT_HZ) > 0.9  # the call itself goes on

    sup.set_mode("whisper")
    t0 = await _window()
    assert _share(leg, t0, SUP_HZ) > 0.9, "whisper: the agent hears the supervisor"
    assert _share(port, t0, SUP_HZ) < 0.05, "whisper: the caller must not"
    assert _share(leg, t0, CALLER_HZ) > 0.9, "whisper is mixed in, the caller is still heard"

    sup.set_mode("barge")
    t0 = await _window()
    assert _share(leg, t0, SUP_HZ) > 0.9 and _share(port, t0, SUP_HZ) > 0.9, "barge: both hear the supervisor"
    assert _share(port, t0, AGENT_HZ) > 0.9 and _share(sup_leg, t0, CALLER_HZ) > 0.9

    sup.set_mode("listen")
    t0 = await _window()
    assert _share(leg, t0, SUP_HZ) < 0.05 and _share(port, t0, SUP_HZ) < 0.05, "back to listening"
    assert changes == [("join", "listen"), ("mode", "whisper"), ("mode", "barge"), ("mode", "listen")]
    with pytest.raises(ValueError):
        sup.set_mode("shout")

    leg.caller_hangup()  # the call ends: so does the supervision, and its leg is hung up
    assert await asyncio.wait_for(running, 10) == "call_ended"
    assert sup_leg.hung_up == "call_ended"
    await asyncio.wait_for(task, 30)
    assert stalled.ended.is_set() and stalled.end_reason == "call_ended"
    saved = m.parts.store.get(bridge.call_id)  # what was written to the database, not the live object
    steps = [(e["supervisor"], e["event"], e["mode"], e.get("reason")) for e in saved.extra["supervision"]]
    assert steps == [("lead", "join", "listen", None), ("lead2", "join", "listen", None),
                     ("lead", "mode", "whisper", None), ("lead", "mode", "barge", None),
                     ("lead", "mode", "listen", None),
                     ("lead", "leave", "listen", "call_ended"), ("lead2", "leave", "listen", "call_ended")], steps
    assert changes[-1] == ("leave", "listen")
    for p in (port, leg, sup_leg, stalled_leg):
        await p.close()
    await m.shutdown(grace_s=1)

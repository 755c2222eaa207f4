"""A caller whose ACK never comes (lost, or a flood of half-open INVITEs) does not keep its line: after 64*T1 without
an ACK the gateway ends the call with a BYE (RFC 3261 13.3.1.4), over UDP (where the 200 OK is retransmitted
meanwhile) and over TCP. Real peer: sipp (tests/sip/scenarios/uac_no_ack.xml). 64*T1 is cut to 3 s here
(aiosipua's timer module, read when used); the protocol is otherwise as on a real line. Before: over TCP no timer
ran, the call waited 40 s and was then handed to the bot unconfirmed, holding its line (found by the SIP fuzz run:
a call still open 45 s after it)."""

from __future__ import annotations

import asyncio

import aiosipua.transaction
import pytest

from tests.sip.peers import run_sipp
from tests.test_sip_gateway import bot, running  # noqa: F401 (the fixture)


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_unacknowledged_call_ends_with_a_bye(bot, tmp_path, monkeypatch, transport):  # noqa: F811
    monkeypatch.setattr(aiosipua.transaction, "TIMER_H", 3.0)
    async with running(bot) as gw:
        res = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_no_ack.xml", workdir=tmp_path, timeout=20,
                             extra=["-t", transport])
        assert res.rc == 0 and res.successful == 1, res  # got the 200, then our BYE
        await asyncio.wait_for(bot.done.wait(), 5)
        assert gw.open_calls == 0
    hangup = bot.calls[0].hangup
    assert (hangup.by, hangup.reason) == ("system", "no_ack")

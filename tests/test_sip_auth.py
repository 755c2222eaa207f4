"""Digest authentication both ways, with real sipp: the gateway REGISTERs to a PBX registrar that challenges it
(sipp UAS with verifyauth), and the gateway challenges inbound INVITEs (sipp UAC answering with credentials).
A carrier trunk cannot exist in this sandbox: the registrar and the caller are sipp on loopback, speaking the
RFC 3261 digest a PBX or trunk speaks."""

from __future__ import annotations

import asyncio

from aiosipua.registration import RegistrationState

from ivr.config import Settings
from ivr.telephony.sip import SipGateway
from tests.sip.bot import Bot
from tests.sip.peers import free_port, run_sipp


async def _register(tmp_path, password: str) -> tuple[object, object]:
    reg_port = free_port()
    registrar = asyncio.create_task(run_sipp("127.0.0.1", scenario="uas_registrar_digest.xml", workdir=tmp_path,
                                             timeout=15, extra=["-p", str(reg_port)]))
    await asyncio.sleep(0.5)
    gw = SipGateway(Settings(host="127.0.0.1", sip_port=0, sip_register_uri=f"sip:ivr@127.0.0.1:{reg_port}",
                             sip_register_password=password), Bot.from_text("您好。", tmp_path))
    await gw.start()
    try:
        res = await registrar
        await asyncio.sleep(0.2)
        state = gw._registration.state
        granted = gw._registration.granted_expires
    finally:
        await gw.stop()
    return res, (state, granted)


async def test_register_with_digest_to_a_pbx(tmp_path):
    res, (state, granted) = await _register(tmp_path, "s3cret")
    assert res.rc == 0 and res.successful == 1, res
    assert state == RegistrationState.REGISTERED and granted == 120  # the registrar's Expires was taken


async def test_register_with_a_wrong_password_fails(tmp_path):
    res, (state, _granted) = await _register(tmp_path, "wrong")
    assert res.rc == 0, res  # the registrar ran its 403 branch
    assert state == RegistrationState.FAILED


async def test_inbound_invite_digest_challenge(tmp_path):
    bot = Bot.from_text("您好，欢迎致电客服中心。", tmp_path)
    gw = SipGateway(Settings(host="127.0.0.1", sip_port=0, sip_auth_user="ivr", sip_auth_password="s3cret"), bot)
    await gw.start()
    try:
        ok = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac_digest.xml", workdir=tmp_path, timeout=30)
        assert ok.rc == 0 and ok.successful == 1, ok
        await asyncio.wait_for(bot.done.wait(), 5)
        assert gw.counters["answered"] == 1 and gw.counters["refused"] == 1  # the first, unauthenticated INVITE
        # no credentials at all: the built-in uac gets 401 and gives up; no call reaches the handler
        bare = await run_sipp(f"127.0.0.1:{gw.port}", scenario="uac", workdir=tmp_path, timeout=8)
        assert bare.successful != 1 and "401" in bare.errors + bare.stdout, bare
    finally:
        await gw.stop()
    assert len(bot.calls) == 1 and bot.calls[0].hangup.by == "caller"

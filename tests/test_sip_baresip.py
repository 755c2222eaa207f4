"""baresip (a real softphone) calls the bot, hears its audio, and is blind-transferred by REFER to an agent
(a sipp UAS standing in for the agent's desk phone)."""

from __future__ import annotations

import asyncio

import numpy as np

from ivr.audio.files import read_audio, write_wav
from ivr.audio.frames import AudioFrame
from ivr.config import Settings
from ivr.telephony.sip import SipGateway
from tests.sip.bot import Bot, espeak_wav
from tests.sip.peers import baresip_config, free_port, run_baresip, run_sipp
from tests.test_sip_gateway import loud


def caller_wav(tmp_path, seconds_of_silence: float) -> object:
    """baresip's 'microphone': Mandarin speech then silence (baresip hangs up when the file ends)."""
    speech = read_audio(espeak_wav("你好，我想查询订单。", tmp_path / "c.wav"), 8000)
    pcm = speech.pcm + AudioFrame.silence(seconds_of_silence, 8000).pcm
    return write_wav(tmp_path / "caller8k.wav", np.frombuffer(pcm, dtype="<i2"), 8000)


async def test_baresip_calls_and_hears_the_bot(tmp_path):
    bot = Bot.from_text("您好，欢迎致电客服中心。", tmp_path)
    gw = SipGateway(Settings(host="127.0.0.1", sip_port=0), bot)
    await gw.start()
    try:
        conf = baresip_config(tmp_path / "conf", wav_in=caller_wav(tmp_path, 2.0), sip_port=free_port(),
                              rec_dir=tmp_path / "rec")
        rc, log = await run_baresip(conf, f"sip:bot@127.0.0.1:{gw.port}", 12)
        assert rc == 0, log
        await asyncio.wait_for(bot.done.wait(), 5)
    finally:
        await gw.stop()
    call = bot.calls[0]
    assert call.hangup.by == "caller" and loud(call.inbound_audio())  # the bot heard baresip's speech
    heard = read_audio(next((tmp_path / "rec").glob("*-dec.wav")), 8000)  # what baresip decoded from the bot
    assert heard.duration > 1.5 and loud(heard), log


async def test_bot_blind_transfers_baresip_to_an_agent(tmp_path):
    agent_port = free_port()
    bot = Bot.from_text("正在为您转接人工客服。", tmp_path, transfer_to=f"sip:agent@127.0.0.1:{agent_port}")
    gw = SipGateway(Settings(host="127.0.0.1", sip_port=0), bot)
    await gw.start()
    try:
        agent = asyncio.create_task(run_sipp(
            "127.0.0.1", scenario="uas", workdir=tmp_path, timeout=30, extra=["-p", str(agent_port)]))
        await asyncio.sleep(0.5)
        conf = baresip_config(tmp_path / "conf", wav_in=caller_wav(tmp_path, 12.0), sip_port=free_port(),
                              rec_dir=tmp_path / "rec")
        rc, log = await run_baresip(conf, f"sip:bot@127.0.0.1:{gw.port}", 10)
        res = await agent
        await asyncio.wait_for(bot.done.wait(), 5)
    finally:
        await gw.stop()
    call = bot.calls[0]
    assert call.transfer_result is True, log
    assert call.hangup.by == "bot" and call.port.transferred_to.endswith(f"@127.0.0.1:{agent_port}")
    assert res.rc == 0 and res.successful == 1, res  # the agent's phone was called, answered, and hung up

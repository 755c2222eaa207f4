"""Where calls are put together, for every entry: the service (WebRTC and SIP through one
:class:`~ivr.call.manager.CallManager`), fixture replay (one session on an in-process line) and ``ivr chat``
(the dialogue alone). Everything else receives its parts ready-made: the call layer never picks a shop, a
speech model, a TTS backend or a dialogue class itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING

# The call machinery is imported by the functions that build calls: `ivr chat` needs new_dialog alone (~0.5 CPU-s
# less start-up without the call manager, sessions, metrics and agent desk).
if TYPE_CHECKING:
    from ivr.call.manager import CallManager, CallParts, CallSlot
    from ivr.call.options import SessionOptions
    from ivr.call.parts import DialogLike, ListenerLike
    from ivr.call.ports import CallInfo, CallPort
    from ivr.call.session import CallSession
    from ivr.call.transfer import TransferHook
    from ivr.call.warm_transfer import WarmTransfer
    from ivr.config import Settings
    from ivr.services.shop.api import ShopService
    from ivr.telephony.sip import SipGateway

log = logging.getLogger(__name__)

FETCH_HINT = "ivr models pull zh-CN-small"


def new_dialog(shop: ShopService, info: CallInfo, *, asr_available: bool) -> DialogLike:
    """The dialogue of one call or chat (``ivr.dialog.manager.DialogManager``) over ``shop``."""
    from ivr.dialog.manager import DialogManager

    return DialogManager(shop, language=info.language, caller_id=info.caller_id, channel=info.channel,
                         call_id=info.call_id, asr_available=asr_available, caller_id_trusted=info.caller_id_trusted)


def build_parts(settings: Settings) -> CallParts:
    """The embedded defaults: the SQL demo shop (seeded on first run), records in the project database, the
    installed speech model for the language if any (else keypad mode, with a log line saying how to get one),
    the configured TTS. Blocking: call before the event loop serves calls (or in a thread)."""
    from ivr.asr.engine import AsrEngine
    from ivr.asr.models import find_model
    from ivr.asr.overload import OverloadGuard
    from ivr.call.manager import CallParts
    from ivr.call.parts import LISTENER_RATE
    from ivr.services.migrate import ensure_schema
    from ivr.services.records import RecordStore
    from ivr.services.shop import open_shop
    from ivr.tts import get_tts

    ensure_schema(settings.database_url)
    shop = open_shop(settings)
    store = RecordStore(settings.database_url)
    model = find_model(settings.language, settings)
    engine = None
    if model is None:
        log.warning("no speech model for %s is installed: calls run in keypad (DTMF) mode. "
                    "Install one with `%s` (or set asr_model).", settings.language, FETCH_HINT)
    else:
        log.info("speech model for %s: %s", settings.language, model)
        engine = AsrEngine.for_model(model, LISTENER_RATE, pool_size=settings.asr_pool_size,
                                     recycle_speech_s=settings.asr_recycle_speech_s, max_workers=settings.asr_workers,
                                     spares_per_call=settings.asr_spares_per_call,
                                     max_recognizers=settings.asr_max_recognizers)
        engine.overload = OverloadGuard(settings.asr_overload_backlog_s)
    return CallParts(shop=shop, tts=get_tts(settings), asr_engine=engine, store=store,
                     dialog_factory=functools.partial(new_dialog, shop))


def warm_transfer_for(settings: Settings, parts: CallParts) -> WarmTransfer:
    """The warm-transfer hook (ACD queue, whisper, bridge, callback) over the service's shared parts."""
    from ivr.asr.vad import VadOptions
    from ivr.call.warm_transfer import WarmTransfer, WarmTransferOptions
    from ivr.services.agents.desk import AgentDesk, DeskOptions

    desk = AgentDesk(DeskOptions(ring_timeout_s=settings.agent_ring_timeout_s, max_wait_s=settings.queue_max_wait_s,
                                 service_hours=settings.service_hours))
    return WarmTransfer(desk, tts=parts.tts, asr_engine=parts.asr_engine,
                        vad_options=parts.vad_options or VadOptions.from_settings(settings), shop=parts.shop,
                        options=WarmTransferOptions(whisper=settings.whisper_summary))


def call_manager(settings: Settings, *, transfer_hook: TransferHook | None = None,
                 options: SessionOptions | None = None) -> CallManager:
    """The service's calls (WebRTC and SIP): :func:`build_parts` with warm transfer to agents. Blocking."""
    from ivr.call.manager import CallManager

    parts = build_parts(settings)
    hook = transfer_hook if transfer_hook is not None else warm_transfer_for(settings, parts)
    return CallManager(settings, parts, transfer_hook=hook, options=options)


async def start_sip(settings: Settings, manager: CallManager) -> SipGateway:
    """The SIP gateway on ``settings.host``:``settings.sip_port`` (UDP, and TCP when that port is free too),
    handing each admitted INVITE to ``manager``: the slot is reserved on INVITE (``CallRefused`` -> 503 with
    Retry-After), the call runs as a tracked call of the manager, so its shutdown gives SIP callers the goodbye."""
    from ivr.telephony.sip import SipGateway

    async def on_call(port: CallPort, slot: CallSlot) -> None:
        task = manager.start_call(port, slot)
        await asyncio.shield(task)  # the gateway stopping must not cut the session's own goodbye short

    gw = SipGateway(settings, on_call, reserve=manager.reserve)
    try:
        await gw.start()
    except OSError as e:
        await gw.stop()
        raise RuntimeError(f"cannot listen for SIP on {settings.host}:{settings.sip_port}: {e.strerror or e} "
                           "(choose another --sip-port, or 0 to disable SIP)") from None
    return gw


def replay_session(port: CallPort, *, settings: Settings, shop_url: str, listener: ListenerLike, asr_mode: str,
                   executor: Executor | None, clock: Callable[[], float]) -> CallSession:
    """A real call session for fixture replay: the dialogue over this call's own copy of the demo shop, the
    configured TTS, ``listener`` (real ASR or reference text), no recording, no store (the replay reports)."""
    from ivr.call.options import SessionOptions
    from ivr.call.session import CallSession
    from ivr.services.shop.store import SqlShop
    from ivr.tts import get_tts

    info = dataclasses.replace(port.info, language=settings.language)  # the service's language, whatever the caller's
    dialog = new_dialog(SqlShop(shop_url), info, asr_available=asr_mode != "dtmf")
    opts = dataclasses.replace(SessionOptions.from_settings(settings), record_audio=False)
    return CallSession(port, dialog=dialog, listener=listener, tts=get_tts(settings), options=opts,
                       asr_mode=asr_mode, executor=executor, clock=clock)

"""Caller-facing lines the call itself says (busy, shutdown, max length, transfer and callback lines), taken
from the language pack so the session and the transfer hooks never hold text of their own."""

from __future__ import annotations

_FALLBACKS = {
    "busy": ["call.busy", "ended"],
    "shutdown": ["call.shutdown", "goodbye"],
    "max_duration": ["call.max_duration", "goodbye"],
    "no_input": ["no_input.final", "goodbye"],
    "transfer_unavailable": ["call.transfer_unavailable"],
    "callback_booked": ["call.callback_booked", "oms.callback_done"],
}


def system_line(language: str, reason: str, **fields: object) -> tuple[str, str | None]:
    """Caller-facing line for a session event (busy, shutdown, max_duration, transfer_unavailable, ...) from the
    language pack: ``call.<reason>`` if the pack has it, else a fitting general prompt; ("", None) if none.
    ``fields`` fill the prompt's placeholders. Returns (text, prompt id)."""
    from ivr.lang import PromptError, get_pack

    try:
        pack = get_pack(language)
    except Exception:
        return "", None
    default = [f"call.{reason}"] if reason.startswith(("transfer_", "bridge_", "callback_")) else [
        f"call.{reason}", "goodbye"]
    for pid in _FALLBACKS.get(reason, default):
        try:
            return pack.prompt(pid, **fields), pid
        except PromptError:
            continue
    return "", None

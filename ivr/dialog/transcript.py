"""The call's transcript (``DialogManager.turns``): one dict per caller input, bot reply and system event, masked
as it is written (the answer to the verification question keeps no digit) - the record, the hand-off card and
the replay read it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ivr.privacy import mask_secret, mask_text

if TYPE_CHECKING:
    from ivr.dialog.context import CallContext, Input
    from ivr.dialog.sentiment import Sentiment
    from ivr.dialog.types import BotReply

Turn = dict[str, Any]  # JSON-ready values of several types


def caller_turn(ctx: CallContext, inp: Input, raw: str, *, secret: bool, sentiment: Sentiment) -> Turn:
    """The transcript entry of a caller input (``secret``: it answers the verification question). Slots the
    caller gave are kept in ``ctx.slots``."""
    turn: Turn = {"who": "caller", "kind": inp.kind, "state": ctx.state}
    if secret:  # the answer to the verification question: no digit of it is kept
        turn.update(text=mask_secret(raw), dtmf=mask_secret(inp.digits), intent=inp.intent)
    elif inp.kind == "text":
        turn.update(text=mask_text(raw), intent=inp.intent, confidence=round(inp.confidence, 3),
                    slots=mask_slots(inp.slots), sentiment=sentiment.score, sentiment_level=sentiment.level)
        for k, v in inp.slots.items():
            if v not in (None, "", [], {}):
                ctx.slots[k] = v
    elif inp.kind == "dtmf":
        turn["dtmf"] = inp.digits
    return turn


def bot_turn(reply: BotReply) -> Turn:
    return {"who": "bot", "text": mask_text(reply.text), "state": reply.state, "intent": reply.intent,
            "actions": list(reply.actions), "reply_id": reply.reply_id}


def end_turn(reason: str) -> Turn:
    return {"who": "system", "event": "end", "reason": reason}


def mark_interrupted(turns: list[Turn], reply: BotReply, segments_played: int) -> None:
    """The caller barged in on ``reply``: its entry says so and what of it was heard."""
    for t in reversed(turns):
        if t.get("reply_id") == reply.reply_id:
            t["interrupted"] = True
            t["heard"] = "".join(s.text for s in reply.segments[:max(0, segments_played - 1)])
            break


def feedback_of(text: str, keywords: list[str]) -> str | None:
    """The caller's words (masked) when they contain a feedback keyword, else None."""
    compact = text.replace(" ", "")
    if any(k and k in compact for k in keywords):
        return mask_text(text)
    return None


def mask_slots(slots: dict[str, Any]) -> dict[str, Any]:
    return {k: (mask_text(v) if isinstance(v, str) else v) for k, v in slots.items()}

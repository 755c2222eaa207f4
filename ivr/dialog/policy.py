"""Turn-policy knobs of the dialogue (typed, documented defaults) and the keypad maps (language-neutral)."""

from __future__ import annotations

from dataclasses import dataclass

# Tasks a caller can ask for (the NLU's intent names).
TASK_INTENTS = (
    "order_status", "logistics", "return_request", "exchange_request", "refund_status", "cancel_order",
    "change_address", "invoice", "price_promotion", "product_question", "complaint",
)

# Main menu by keypad. '0' is a human everywhere a number is not being typed; '*' repeats everywhere.
MENU_KEYS = {
    "1": "order_status", "2": "logistics", "3": "return_request", "4": "exchange_request", "5": "refund_status",
    "6": "cancel_order", "7": "change_address", "8": "invoice", "9": "price_promotion", "#": "product_question",
}
YES_KEY, NO_KEY, HUMAN_KEY, REPEAT_KEY = "1", "2", "0", "*"


@dataclass(frozen=True, slots=True)
class DialogPolicy:
    """How patient the bot is and what it treats as confident."""

    max_no_input: int = 3  # silences in a row before a polite goodbye
    max_no_match: int = 3  # misunderstandings in one state before a transfer (the 2nd offers keypad/human)
    max_verify_attempts: int = 3  # wrong phone tails in one call before verification is refused
    verify_tail_digits: int = 4  # digits of the order's phone (from the end) asked after the order number
    max_order_attempts: int = 3  # unknown order numbers before giving up
    min_intent_confidence: float = 0.45  # below this a task intent is not acted on
    kb_first_below: float = 0.7  # a policy-ish task guess below this is answered from the knowledge base if it can
    min_asr_confidence: float = 0.2  # recognitions below this count as not understood
    heard_fraction: float = 0.6  # share of the final question segment that must be played to count as asked
    timezone: str = "Asia/Shanghai"  # the shop's calendar for dates read to callers
    return_days: int = 7  # no-reason return window after delivery
    quality_return_days: int = 15  # window for quality problems
    frustration_repeat_turns: int = 3  # apologise again at most every N caller turns
    summary_chars: int = 30  # complaint summary read back to the caller


def default_policy() -> DialogPolicy:
    """The policy with the shop's settings (``verify_tail_digits``, return windows); defaults if unreadable."""
    from ivr.config import ConfigError, get_settings

    try:
        s = get_settings()
    except ConfigError:
        return DialogPolicy()
    return DialogPolicy(verify_tail_digits=s.verify_tail_digits, return_days=s.return_days,
                        quality_return_days=s.quality_return_days)

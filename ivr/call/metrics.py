"""Prometheus metrics of the call layer (one registry per CallManager, exposed at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ivr.call.trace import STAGES, stages_ms
from ivr.events import TurnTiming

_LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
_STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)


class CallMetrics:
    """Live numbers: active calls, outcomes, refusals, turn latency and its stages, barge-ins."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.active_calls = Gauge("ivr_active_calls", "Calls in progress", ["channel"], registry=r)
        self.capacity = Gauge("ivr_call_capacity", "Configured maximum of concurrent calls", registry=r)
        self.calls = Counter("ivr_calls", "Finished calls by channel and outcome", ["channel", "outcome"], registry=r)
        self.refused = Counter("ivr_calls_refused", "Calls refused (capacity, shutting down)", ["reason"], registry=r)
        self.degraded = Counter("ivr_calls_degraded", "Calls answered in keypad mode although a speech model is "
                                "installed (asr_overload: recognition behind the talking callers)", ["reason"], registry=r)
        self.turn_latency = Histogram(
            "ivr_turn_latency_seconds",
            "Arrival of the caller's last voiced audio (or key press) to the first bot audio sent",
            ["input"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.asr_latency = Histogram(
            "ivr_asr_final_seconds", "VAD endpoint decision to final ASR transcript", buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.turn_stage = Histogram(
            "ivr_turn_stage_seconds", f"One stage of a turn's latency ({', '.join(STAGES)}; they add up to "
            "ivr_turn_latency_seconds)", ["stage"], buckets=_STAGE_BUCKETS, registry=r,
        )
        self.dialog_latency = Histogram(
            "ivr_dialog_seconds", "Input ready to dialogue decision", buckets=_STAGE_BUCKETS, registry=r
        )
        self.tts_latency = Histogram(
            "ivr_tts_first_audio_seconds", "Dialogue decision to first synthesised audio queued",
            buckets=_STAGE_BUCKETS, registry=r,
        )
        self.barge_ins = Counter("ivr_barge_ins", "Caller interruptions that stopped the bot", registry=r)
        self.playout_stalls = Counter("ivr_playout_stalls", "Outbound audio clock re-anchored after a stall", registry=r)

    def observe_turn(self, timing: TurnTiming, input_kind: str) -> None:
        """Record one finished turn's latencies (missing stamps are skipped)."""
        t = timing
        if t.speech_end is not None and t.first_audio_sent is not None:
            self.turn_latency.labels(input_kind).observe(max(0.0, t.first_audio_sent - t.speech_end))
        endpoint = t.extra.get("vad_end", t.speech_end)
        if endpoint is not None and t.asr_final is not None and input_kind == "speech":
            self.asr_latency.observe(max(0.0, t.asr_final - endpoint))
        if t.first_audio_sent is not None:
            for stage, ms in stages_ms(t).items():
                self.turn_stage.labels(stage).observe(max(0.0, ms / 1000.0))
        ready = t.asr_final if t.asr_final is not None else t.speech_end
        if ready is not None and t.dialog_decision is not None:
            self.dialog_latency.observe(max(0.0, t.dialog_decision - ready))
        if t.dialog_decision is not None and t.tts_first_audio_queued is not None:
            self.tts_latency.observe(max(0.0, t.tts_first_audio_queued - t.dialog_decision))

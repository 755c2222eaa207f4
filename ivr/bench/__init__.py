"""Benchmarks (`ivr bench ...`). Each module exposes ``register(subparsers)`` and writes its section of
docs/benchmarks.md through :func:`ivr.bench.report.write_section`."""

MODULES = ["asr", "tts", "calls", "replay", "sip", "fuzz"]

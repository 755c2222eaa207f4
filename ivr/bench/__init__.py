"""Benchmarks (`ivr bench ...`). Each module exposes ``register(subparsers)`` and writes its section of
docs/benchmarks.md through :func:`ivr.bench.report.write_section`."""

MODULES = ["asr", "tts", "calls", "sip", "fuzz"]  # `ivr bench replay` is command glue only: ivr/cli/bench_cmd.py

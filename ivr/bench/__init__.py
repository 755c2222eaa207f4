"""Benchmarks (`ivr bench ...`): the measuring code, one module per benchmark; each writes its section of
docs/benchmarks.md through :func:`ivr.bench.report.write_section`. The commands are in ``ivr.cli.bench_*``."""

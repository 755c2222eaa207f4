"""Fuzzing (issue 12): a fixed corpus of nasty requests (tests/fuzz_corpus.py), then 800 Hypothesis-generated
ones, to the service's HTTP JSON APIs over real HTTP.

The call API (DTMF, hang-up, record; ``{live}`` ids are a real SIP call kept up by the fuzzer), logins, the agent
desk and the statistics APIs, logged out, as an agent and as a supervisor, with odd ids, query strings,
Content-Types, Origins, cookies and bodies (JSON of the wrong shape and type, broken JSON, deep nesting, non-UTF-8).
Properties: no 5xx but the deliberate 503, no traceback in the log, every answer within 10 s; ``/health`` is 200
and the SIP gateway still answers OPTIONS afterwards. Deeper runs: ``ivr bench fuzz --targets http --cases 10000``.
"""

from __future__ import annotations

from fuzz_corpus import HTTP_CORPUS

from ivr.bench.fuzz import run_target

CASES = 800  # generated, after the corpus: every API is still drawn ~30 times, ~10 per login state


def test_http_apis_never_answer_5xx_or_hang():
    res = run_target("http", CASES, corpus=HTTP_CORPUS)
    assert res.cases >= len(HTTP_CORPUS) + CASES, res.summary()
    assert res.crashes == 0 and res.hangs == 0, res.summary()
    seen = res.seen  # logged-in and anonymous paths were both reached
    assert seen.get(200, 0) > 50 and seen.get(401, 0) > 50 and seen.get(404, 0) > 20, seen

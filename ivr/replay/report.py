"""Replay reports: JSON (machine-readable), a self-contained HTML page (per-turn tables, inline latency plots),
and the terminal summary table."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

from jinja2 import Environment, select_autoescape
from rich.console import Console
from rich.table import Table

from ivr.replay.expect import turn_label
from ivr.replay.results import CallResult, SuiteResult
from ivr.tables import markdown_table


def write_json(suite: SuiteResult, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(suite.as_dict(), ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return p


# --- plots ---------------------------------------------------------------------------------------------------
def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def latency_plot(suite: SuiteResult) -> str | None:
    """Caller-heard latency of every turn (one row per call, dot per turn; red = failed turn), as a data URI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    calls = [c for c in suite.calls if any(t.heard_ms is not None and t.kind != "greeting" for t in c.turns)]
    if not calls:
        return None
    names = sorted({c.fixture for c in calls})
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.28 * len(names) + 1)))
    for c in calls:
        y = names.index(c.fixture)
        for t in c.turns:
            if t.heard_ms is None or t.kind == "greeting":
                continue
            ax.scatter(t.heard_ms, y, s=22, c="#c0392b" if t.failures else "#2e86c1", alpha=0.75, edgecolors="none")
    heard = [v for c in calls for v in c.heard_latencies()]
    if heard:
        p50 = float(sorted(heard)[len(heard) // 2])
        ax.axvline(p50, color="#555", lw=0.8, ls="--", label=f"median {p50:.0f} ms")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("caller's speech end (or key press) to first bot audio heard, ms")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def levels_plot(suite: SuiteResult) -> str | None:
    """p50/p95 latency per concurrency level, as a data URI (only with two or more levels)."""
    if len(suite.levels) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    xs = [lv.concurrency for lv in suite.levels]
    for key, style in (("p50", "-o"), ("p95", "--s")):
        ax.plot(xs, [lv.heard.get(key, math.nan) for lv in suite.levels], style, label=f"heard {key}")
        ax.plot(xs, [lv.pipeline.get(key, math.nan) for lv in suite.levels], style, alpha=0.5, label=f"pipeline {key}")
    ax.set_xlabel("concurrent calls")
    ax.set_ylabel("ms")
    ax.set_xticks(xs)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(fig)


# --- HTML ----------------------------------------------------------------------------------------------------
_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ivr replay report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,-apple-system,"Noto Sans CJK SC",sans-serif;margin:1.5rem;color:#222;max-width:1200px}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem} table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.3rem .45rem;font-size:.85rem;vertical-align:top;text-align:left}
th{background:#f4f6f8} .pass{color:#1e8449;font-weight:600} .fail{color:#c0392b;font-weight:600}
.muted{color:#777} .fails{color:#c0392b;margin:.2rem 0 .6rem 1rem} details{margin:.6rem 0}
summary{cursor:pointer;font-weight:600} code{background:#f4f4f4;padding:0 .2rem} img{max-width:100%}
</style></head><body>
<h1>ivr replay — <span class="{{ 'pass' if suite.passed else 'fail' }}">{{ 'PASS' if suite.passed else 'FAIL' }}</span></h1>
<p>{{ summary.passed }} of {{ summary.calls }} calls passed · via <code>{{ suite.via }}</code> · ASR
<code>{{ suite.asr }}</code> · fixtures <code>{{ suite.target }}</code> · started {{ suite.started_at }} ·
{{ '%.1f' % suite.wall_s }} s</p>
{% for n in suite.notes %}<p class="muted">{{ n }}</p>{% endfor %}
{% if levels %}<h2>Latency per concurrency level</h2>
<table><tr><th>concurrent calls</th><th>calls</th><th>passed</th><th>heard p50 ms</th><th>heard p95 ms</th>
<th>heard max ms</th><th>pipeline p50 ms</th><th>pipeline p95 ms</th><th>wall s</th></tr>
{% for lv in levels %}<tr><td>{{ lv.concurrency }}</td><td>{{ lv.calls }}</td><td>{{ lv.passed }}</td>
<td>{{ ms(lv.heard.p50) }}</td><td>{{ ms(lv.heard.p95) }}</td><td>{{ ms(lv.heard.max) }}</td>
<td>{{ ms(lv.pipeline.p50) }}</td><td>{{ ms(lv.pipeline.p95) }}</td><td>{{ lv.wall_s }}</td></tr>{% endfor %}</table>
{% if levels_png %}<img alt="latency per concurrency level" src="{{ levels_png }}">{% endif %}{% endif %}
{% if latency_png %}<h2>Turn latency</h2><img alt="turn latency per call" src="{{ latency_png }}">
<p class="muted">heard = the caller's speech end (or key press) to the first bot audio the caller heard (includes
the endpointing silence); pipeline = the session's own trace, VAD speech end to first audio sent.</p>{% endif %}
<h2>Calls</h2>
<table><tr><th>fixture</th><th>result</th><th>turns</th><th>outcome</th><th>ended by</th><th>heard p50 ms</th>
<th>duration s</th><th>concurrency</th></tr>
{% for c in calls %}<tr><td><a href="#c{{ loop.index }}">{{ c.fixture }}</a></td>
<td class="{{ 'pass' if c.passed else 'fail' }}">{{ 'pass' if c.passed else ('not run' if c.error.startswith('not run') else 'FAIL') }}</td>
<td>{{ c.turns|length }}</td><td>{{ c.outcome }}</td><td>{{ c.ended_by }}</td><td>{{ ms(median(c.heard_latencies())) }}</td>
<td>{{ '%.1f' % c.duration_s }}</td><td>{{ c.concurrency }}</td></tr>{% endfor %}</table>
{% for c in calls %}<details id="c{{ loop.index }}" {% if not c.passed %}open{% endif %}>
<summary class="{{ 'pass' if c.passed else 'fail' }}">{{ c.fixture }} — {{ 'pass' if c.passed else 'FAIL' }}
<span class="muted">({{ c.path }}, call {{ c.call_id }}, concurrency {{ c.concurrency }})</span></summary>
{% if c.description %}<p>{{ c.description }}</p>{% endif %}
{% if c.error %}<p class="fail">{{ c.error }}</p>{% endif %}
{% for n in c.notes %}<p class="muted">{{ n }}</p>{% endfor %}
<table><tr><th>#</th><th>caller</th><th>how</th><th>bot heard</th><th>bot reply</th><th>intent</th><th>actions</th>
<th>heard ms</th><th>pipeline ms</th><th>expected</th><th>result</th></tr>
{% for t in c.turns %}<tr><td>{{ label(t) }}</td><td>{{ t.input }}{% if t.audio %}<br><span class="muted">{{ t.audio }}</span>{% endif %}
{% if t.interrupted is not none %}<br><span class="muted">barge-in: {{ 'bot stopped' if t.interrupted else 'bot kept talking' }}{% if t.stop_ms is not none %} after {{ '%.0f' % t.stop_ms }} ms{% endif %}</span>{% endif %}</td>
<td>{{ t.asr_mode }}{% if t.vad_segments and t.vad_segments > 1 %}<br><span class="muted">{{ t.vad_segments }} VAD pieces</span>{% endif %}</td>
<td>{{ t.heard }}{% if t.cer is not none %}<br><span class="muted">CER {{ '%.2f' % t.cer }}</span>{% endif %}</td><td>{{ t.reply }}</td><td>{{ t.main.intent if t.main else '' }}</td>
<td>{{ t.bot_turns|map(attribute='actions')|sum(start=[])|join(', ') }}</td>
<td>{{ ms(t.heard_ms) }}</td><td>{{ ms(t.latency_ms) }}</td>
<td><code>{{ fmt_expect(t.expect) }}</code></td>
<td class="{{ 'pass' if t.passed else 'fail' }}">{{ 'ok' if t.passed else 'FAIL' }}</td></tr>{% endfor %}</table>
{% if c.all_failures %}<ul class="fails">{% for f in c.all_failures %}<li>{{ f }}</li>{% endfor %}</ul>{% endif %}
</details>{% endfor %}
</body></html>
"""


def _ms(v: float | None) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0f}"


def _median(values: list[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None


def _fmt_expect(d: dict) -> str:
    return "; ".join(f"{k}={v}" for k, v in d.items()) if d else ""


def render_html(suite: SuiteResult) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    tpl = env.from_string(_TEMPLATE)
    return tpl.render(
        suite=suite, summary=suite.as_dict()["summary"], calls=suite.calls, levels=suite.levels,
        latency_png=latency_plot(suite), levels_png=levels_plot(suite), ms=_ms, median=_median,
        fmt_expect=_fmt_expect, label=lambda t: html.unescape(turn_label(t).split(" (")[0]),
    )


def write_html(suite: SuiteResult, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(suite), encoding="utf-8")
    return p


# --- terminal ------------------------------------------------------------------------------------------------
def print_summary(suite: SuiteResult, console: Console) -> None:
    """The end-of-run table (one row per call), the failures, and the per-level latency table."""
    table = Table(title=f"ivr replay · via {suite.via} · ASR {suite.asr}", show_lines=False)
    for col, kw in (("fixture", {}), ("result", {}), ("turns", {"justify": "right"}), ("outcome", {}),
                    ("heard p50 ms", {"justify": "right"}), ("heard max ms", {"justify": "right"}),
                    ("first failure", {"overflow": "fold"})):
        table.add_column(col, **kw)
    for c in suite.calls:
        heard = c.heard_latencies()
        status = "[green]pass[/]" if c.passed else ("[yellow]not run[/]" if c.error.startswith("not run") else "[red]FAIL[/]")
        first = c.all_failures[0].split(": ", 1)[-1] if c.all_failures else ""
        table.add_row(c.fixture + (f" ×{c.concurrency}" if len(suite.levels) > 1 else ""), status, str(len(c.turns)),
                      c.outcome, _ms(_median(heard)), _ms(max(heard) if heard else None), first)
    console.print(table)
    skipped = [c for c in suite.calls if c.error.startswith("not run")]
    for c in skipped:
        console.print(f"  [yellow]–[/] {c.fixture}: {c.error}", highlight=False, soft_wrap=True)
    fails = [f for c in suite.calls if c not in skipped for f in c.all_failures]
    if fails:
        console.print(f"[red]{len(fails)} failure(s):[/]")
        for f in fails:
            console.print(f"  [red]✗[/] {f}", markup=True, highlight=False, soft_wrap=True)
    if len(suite.levels) > 1 or (suite.levels and suite.levels[0].concurrency > 1):
        console.print(levels_markdown(suite))
    for n in suite.notes:
        console.print(f"[dim]{n}[/]")
    passed = sum(c.passed for c in suite.calls)
    colour = "green" if suite.passed else "red"
    console.print(f"[{colour}]{passed}/{len(suite.calls)} calls passed[/] in {suite.wall_s:.1f} s")


def levels_markdown(suite: SuiteResult) -> str:
    """The concurrency table (for docs/benchmarks.md and the terminal)."""
    rows = [[lv.concurrency, lv.calls, lv.passed, _ms(lv.heard.get("p50")), _ms(lv.heard.get("p95")),
             _ms(lv.heard.get("max")), _ms(lv.pipeline.get("p50")), _ms(lv.pipeline.get("p95")), lv.wall_s]
            for lv in suite.levels]
    return markdown_table(["concurrent calls", "calls", "passed", "heard p50 ms", "heard p95 ms", "heard max ms",
                           "pipeline p50 ms", "pipeline p95 ms", "wall s"], rows)


def summarize_call(c: CallResult) -> str:
    """One line per call for logs."""
    return f"{c.fixture}: {'pass' if c.passed else 'FAIL'} ({len(c.turns)} turns, {c.outcome or '-'})"

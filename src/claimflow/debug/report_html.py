"""One verification as one self-contained HTML page: the verdict, the graph with the path taken
highlighted, the evidence in its stance colours, the justifications, and a panel per node with its
inputs, rendered prompts, raw model outputs, verbalized scores and timings.

No script, no external asset: a Content-Security-Policy forbids fetching anything, so the page
opens the same offline, in a mail attachment or in a CI artifact.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from claimflow._version import __version__
from claimflow.debug.render import CSP, END, START, layout, to_svg
from claimflow.graphs.trace import ModelCall, NodeTrace
from claimflow.graphs.trace_store import RunInfo
from claimflow.types import EvidenceStance, Justifications, LabelScores, VerificationResult

MAX_CALLS_SHOWN = 25
e = html.escape

_CSS = """
:root { --support: #1f9d55; --refute: #d64545; --neutral: #8a8a99; --unparsed: #d98e04; --ink: #1d1d2b; }
body {
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif;
  margin: 0;
  color: var(--ink);
  background: #fafafc;
}
main { max-width: 1100px; margin: 0 auto; padding: 1.5em 2em 4em; }
h1 { font-size: 1.35em; margin: 0.2em 0; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
h3 { margin: 0; font-size: 1.1em; } h4 { margin: 1em 0 0.3em; color: #555; }
.claim { font-size: 1.25em; font-weight: 600; margin: 0.4em 0; }
.verdict {
  display: inline-block;
  padding: 0.3em 0.8em;
  border-radius: 6px;
  font-weight: 700;
  color: white;
  background: var(--neutral);
}
.verdict.v-SUPPORTED { background: var(--support); } .verdict.v-REFUTED { background: var(--refute); }
.meta { color: #555; }
.layout { display: grid; grid-template-columns: minmax(220px, auto) 1fr; gap: 2em; align-items: start; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #e6e6ee; padding: 0.35em 0.5em; text-align: left; vertical-align: top; }
.chip {
  display: inline-block;
  padding: 0 0.5em;
  border-radius: 4px;
  color: white;
  font-size: 0.85em;
  font-weight: 600;
}
.stance-support .chip { background: var(--support); } .stance-refute .chip { background: var(--refute); }
.stance-neutral .chip { background: var(--neutral); } .stance-unparsed .chip { background: var(--unparsed); }
tr.stance-support { border-left: 5px solid var(--support); }
tr.stance-refute { border-left: 5px solid var(--refute); }
tr.stance-neutral { border-left: 5px solid var(--neutral); }
tr.stance-unparsed { border-left: 5px solid var(--unparsed); }
.bar {
  display: inline-block;
  width: 90px;
  height: 8px;
  background: #ececf2;
  border-radius: 4px;
  vertical-align: middle;
}
.bar > span { display: block; height: 8px; border-radius: 4px; background: #7c6fd6; }
.probs { font-size: 0.85em; white-space: nowrap; }
.just { border-radius: 6px; padding: 0.6em 0.9em; margin: 0.5em 0; background: white; }
.just.support { border-left: 5px solid var(--support); }
.just.refute { border-left: 5px solid var(--refute); }
.node-panel {
  background: white;
  border: 1px solid #e0e0ea;
  border-radius: 8px;
  padding: 1em 1.2em;
  margin: 1em 0;
}
.node-panel.inherited { border-style: dashed; }
.timing { color: #555; font-size: 0.9em; }
pre {
  white-space: pre-wrap;
  word-break: break-word;
  background: #f6f6f9;
  padding: 0.5em 0.7em;
  margin: 0.2em 0;
  border-radius: 4px;
  font-size: 12.5px;
}
.msg .role { font-size: 0.75em; text-transform: uppercase; color: #777; letter-spacing: 0.05em; }
details.call { border-top: 1px solid #eee; padding: 0.3em 0; } details.call summary { cursor: pointer; }
.error { color: var(--refute); font-weight: 600; }
dl.inputs dt { font-weight: 600; margin-top: 0.4em; } dl.inputs dd { margin: 0 0 0 1em; }
footer { color: #888; font-size: 0.85em; margin-top: 3em; }
"""


def _bar(p: float) -> str:
    width = max(0.0, min(1.0, p)) * 100
    return f'<span class="bar"><span style="width:{width:.0f}%"></span></span>'


def _probs(probabilities: Mapping[str, float]) -> str:
    rows = "".join(f"<div>{_bar(p)} {e(k)} {p:.2f}</div>" for k, p in probabilities.items())
    return f'<div class="probs">{rows}</div>'


def stance_class(label: str | None, support_label: str = "SUPPORT", refute_label: str = "REFUTE") -> str:
    if label is None:
        return "stance-unparsed"
    if label == support_label:
        return "stance-support"
    if label == refute_label:
        return "stance-refute"
    return "stance-neutral"


def _scores_html(s: LabelScores) -> str:
    parts = [f'<span class="chip">{e(s.label or "UNPARSED")}</span> p={s.confidence:.2f}', _probs(s.probabilities)]
    if s.parse_error:
        parts.append(f'<div class="error">parse error: {e(s.parse_error)}</div>')
    if s.raw_output is not None:
        parts.append(f"<div>raw output:</div><pre>{e(s.raw_output)}</pre>")
    if s.demo_ids:
        parts.append(f"<div>demos: {e(', '.join(s.demo_ids))}</div>")
    return "".join(parts)


def _value_html(value: Any, support: str, refute: str) -> str:
    if isinstance(value, LabelScores):
        return f'<div class="{stance_class(value.label, support, refute)}">{_scores_html(value)}</div>'
    if isinstance(value, Justifications):
        return "".join(
            f'<div class="just {j.side}"><b>{j.side}</b> (evidence {e(str(j.evidence_indices))}'
            f"{'' if j.generated else ', not generated'}): {e(j.text)}</div>"
            for j in (value.support, value.refute)
        )
    if isinstance(value, list) and value and all(isinstance(v, EvidenceStance) for v in value):
        rows = "".join(
            f'<tr class="{stance_class(s.label, support, refute)}"><td>{s.index}</td>'
            f'<td><span class="chip">{e(s.label or "UNPARSED")}</span></td><td>{_probs(s.probabilities)}</td>'
            f"<td>{e(s.text)}</td></tr>"
            for s in value
        )
        return f"<table>{rows}</table>"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "<ol start='0'>" + "".join(f"<li>{e(v)}</li>" for v in value) + "</ol>"
    if isinstance(value, BaseModel):
        return f"<pre>{e(value.model_dump_json(indent=2))}</pre>"
    return f"<pre>{e(str(value))}</pre>"


def _call_html(n: int, call: ModelCall) -> str:
    summary = f"#{n} {call.kind} · {e(call.backend)} · batch {call.batch} · {call.seconds:.3f}s"
    if call.error:
        summary += ' · <span class="error">error</span>'
    parts = [f'<details class="call" data-kind="{call.kind}"{" open" if n == 1 else ""}><summary>{summary}</summary>']
    parts += [
        f'<div class="msg msg-{e(m.role)}"><span class="role">{e(m.role)}</span><pre>{e(m.content)}</pre></div>'
        for m in call.messages
    ]
    if call.assistant_prefix:
        parts.append(
            f'<div class="msg msg-prefix"><span class="role">assistant prefix</span>'
            f"<pre>{e(call.assistant_prefix)}</pre></div>"
        )
    if call.kind == "score":
        lp = call.logprobs or {}
        finite = {c: v for c, v in lp.items() if v is not None and math.isfinite(v)}
        top = max(finite.values(), default=0.0)
        z = sum(math.exp(v - top) for v in finite.values()) or 1.0
        rows = "".join(
            f"<tr><td><code>{e(repr(c))}</code></td><td>{lp[c]:.3f}</td><td>{_bar(math.exp(lp[c] - top) / z)} "
            f"{math.exp(lp[c] - top) / z:.2f}</td></tr>"
            if c in finite
            else f"<tr><td><code>{e(repr(c))}</code></td><td colspan=2>(not returned)</td></tr>"
            for c in call.candidates
        )
        parts.append(
            '<table class="logprobs"><tr><th>candidate</th><th>raw log-prob</th><th>softmax over candidates</th></tr>'
            f"{rows}</table>"
        )
    else:
        parts.append(f'<div>raw output:</div><pre class="output">{e(call.output or "")}</pre>')
    if call.params:
        parts.append(f'<div class="meta">{e(", ".join(f"{k}={v}" for k, v in call.params.items()))}</div>')
    if call.error:
        parts.append(f'<div class="error">{e(call.error)}</div>')
    parts.append("</details>")
    return "".join(parts)


def _node_panel(
    entry: NodeTrace, inputs: Mapping[str, Any], final: Mapping[str, Any], support: str, refute: str
) -> str:
    cls = "node-panel" + (" inherited" if entry.inherited_from else "")
    timing = f"{entry.seconds:.3f} s · {entry.model_calls} model call(s) · {entry.forward_passes} forward pass(es)" + (
        f" · copied from run {e(entry.inherited_from)}, not re-run" if entry.inherited_from else ""
    )
    parts = [
        f'<section class="{cls}" id="node-{e(entry.node)}" data-node="{e(entry.node)}">',
        f'<h3>{e(entry.node)}</h3><div class="timing">{timing}</div>',
        "<h4>Inputs</h4><dl class='inputs'>",
    ]
    for key in entry.reads:
        body = _value_html(inputs[key], support, refute) if key in inputs else "<i>absent</i>"
        parts.append(f"<dt>{e(key)}</dt><dd>{body}</dd>")
    parts.append("</dl>")
    parts.append(f"<h4>Model calls ({len(entry.calls)})</h4>")
    parts += [_call_html(n, c) for n, c in enumerate(entry.calls[:MAX_CALLS_SHOWN], 1)]
    if len(entry.calls) > MAX_CALLS_SHOWN:
        parts.append(f"<p>… {len(entry.calls) - MAX_CALLS_SHOWN} more calls (see <code>claimflow trace</code>)</p>")
    parts.append("<h4>Outputs</h4><dl class='inputs'>")
    for key in entry.writes:
        if key == "prompts":
            refs = {k: v for k, v in final.get("prompts", {}).items() if k.startswith(entry.node)}
            parts.append(f"<dt>prompts</dt><dd>{e(', '.join(f'{k}={v}' for k, v in refs.items()))}</dd>")
        elif key in final:
            parts.append(f"<dt>{e(key)}</dt><dd>{_value_html(final[key], support, refute)}</dd>")
    parts.append("</dl></section>")
    return "".join(parts)


def _evidence_table(result: VerificationResult, support: str, refute: str) -> str:
    used: dict[int, list[str]] = {}
    if result.justifications is not None:
        for j in (result.justifications.support, result.justifications.refute):
            for i in j.evidence_indices:
                used.setdefault(i, []).append(j.side)
    stances = {s.index: s for s in result.evidence_stances}
    rows = []
    for i, sentence in enumerate(result.evidence):
        s = stances.get(i)
        label = s.label if s else None
        cls = stance_class(label, support, refute) if s else "stance-none"
        chip = f'<span class="chip">{e(label or "UNPARSED")}</span>' if s else "<i>not scored</i>"
        probs = _probs(s.probabilities) if s else ""
        relevance = f"{s.relevance:.2f}" if s and s.relevance is not None else ""
        if s and not s.used:
            relevance += " (below max_evidence)"
        rows.append(
            f'<tr class="evidence {cls}" data-index="{i}" data-label="{e(label or "")}"><td>{i}</td>'
            f"<td>{e(sentence)}</td><td>{chip}</td><td>{probs}</td><td>{e(relevance)}</td>"
            f"<td>{e(', '.join(used.get(i, [])))}</td></tr>"
        )
    return (
        '<table id="evidence-table"><tr><th>#</th><th>sentence</th><th>stance</th><th>scores</th>'
        f"<th>relevance</th><th>used by</th></tr>{''.join(rows)}</table>"
    )


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def render_report(
    *,
    drawable: Any,
    state: Mapping[str, Any],
    result: VerificationResult | None,
    run: RunInfo | None = None,
    inputs_by_node: Mapping[str, Mapping[str, Any]] | None = None,
    support_label: str = "SUPPORT",
    refute_label: str = "REFUTE",
    generated_at: float | None = None,
) -> str:
    """The page for one run. ``state`` is the final graph state (with ``trace``); ``inputs_by_node``
    the state each node saw (from the checkpoints), else the final state is used."""
    trace: Sequence[NodeTrace] = list(state.get("trace", []))
    stages_run = list(state.get("stages_run", []))
    finished = result is not None
    path = [START, *stages_run] + ([END] if finished else [])
    svg = to_svg(layout(drawable), path=path, links=True, title="path taken")
    run_id = (result.run_id if result else None) or (run.run_id if run else None)
    claim = result.claim if result else str(state.get("claim", ""))
    title = f"claimflow run {run_id}" if run_id else "claimflow verification"
    head: list[str] = [f"<h1>{e(title)}</h1>", f'<p class="claim" id="claim">{e(claim)}</p>']
    if result is not None and result.veracity is not None:
        v = result.veracity
        head.append(
            f'<div id="verdict" class="verdict v-{e(v.label or "UNPARSED")}">{e(v.label or "UNPARSED")} '
            f"(p={v.confidence:.2f})</div>{_probs(v.probabilities)}"
        )
    elif result is not None:
        head.append(f'<div id="verdict" class="verdict">{e(result.status)}</div>')
    else:
        error = run.error if run and run.error else "the run did not finish"
        head.append(f'<div id="verdict" class="verdict v-error">no result: {e(error)}</div>')
    meta = []
    if result is not None:
        meta.append(f"status <b>{e(result.status)}</b>")
        meta.append(f"total {result.provenance.total_seconds:.2f} s")
        if result.check_worthiness is not None:
            meta.append(f"check-worthy {e(result.check_worthiness.label or 'UNPARSED')}")
    meta.append(f"stages run: {e(', '.join(stages_run) or 'none')}")
    if run is not None:
        meta.append(f"recorded {_when(run.created)}")
    head.append(f'<p class="meta">{" · ".join(meta)}</p>')
    if run is not None and run.parent_run:
        head.append(
            f'<p class="meta" id="replay-of">replay of run <code>{e(run.parent_run)}</code> from '
            f"<b>{e(run.from_node or '?')}</b>: {e('; '.join(run.changes) or 'no changes')}</p>"
        )
    support, refute = support_label, refute_label
    body = [
        f"<header>{''.join(head)}</header>",
        '<div class="layout">',
        f'<section id="graph"><h2>Path taken</h2>{svg}<p class="meta">green: taken · grey: not taken · '
        "dashed: conditional · click a node for its panel</p></section>",
        "<div>",
        "<section id='evidence'><h2>Evidence</h2>",
        _evidence_table(result, support, refute)
        if result is not None
        else _value_html(state.get("evidence", []), support, refute),
        "</section>",
    ]
    if result is not None and result.justifications is not None:
        justifications = _value_html(result.justifications, support, refute)
        body.append(f"<section id='justifications'><h2>Justifications</h2>{justifications}</section>")
    body.append("</div></div>")
    body.append("<section id='nodes'><h2>Nodes</h2>")
    inputs_by_node = inputs_by_node or {}
    for entry in trace:
        body.append(_node_panel(entry, inputs_by_node.get(entry.node, state), state, support, refute))
    if not trace:
        body.append("<p>No node ran.</p>")
    body.append("</section>")
    if result is not None:
        prov = result.provenance
        rows = "".join(
            f"<tr><td>{e(stage)}</td><td>{e(m.backend)}</td><td>{e(m.model)}</td>"
            f"<td><code>{e((m.sha256 or '-')[:16])}</code></td></tr>"
            for stage, m in prov.models.items()
        )
        prompts = "".join(f"<tr><td>{e(k)}</td><td><code>{e(v)}</code></td></tr>" for k, v in prov.prompts.items())
        timings = "".join(
            f"<tr><td>{e(k)}</td><td>{s:.3f} s</td><td>{prov.model_calls.get(k, 0)}</td>"
            f"<td>{prov.forward_passes.get(k, 0)}</td></tr>"
            for k, s in prov.node_seconds.items()
        )
        body.append(
            "<section id='provenance'><h2>Provenance</h2>"
            f"<p class='meta'>claimflow {e(prov.claimflow_version)} · commit {e(prov.git_commit or '-')}</p>"
            f"<h4>Models</h4><table><tr><th>stage</th><th>backend</th><th>model</th><th>sha256</th></tr>{rows}</table>"
            f"<h4>Prompts</h4><table>{prompts}</table>"
            "<h4>Timings</h4><table><tr><th>node</th><th>time</th><th>model calls</th><th>forward passes</th></tr>"
            f"{timings}</table>"
            "</section>"
        )
    stamp = _when(generated_at) if generated_at is not None else "-"
    body.append(f"<footer>generated by claimflow {e(__version__)} · {stamp} · self-contained, no network</footer>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>{_CSS}</style></head>
<body><main>
{chr(10).join(body)}
</main></body></html>
"""

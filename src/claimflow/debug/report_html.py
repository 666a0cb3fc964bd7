"""One verification as one self-contained HTML page: the verdict, the graph with the path taken
highlighted, the evidence in its stance colours, the justifications, and a panel per node with its
inputs, rendered prompts, raw model outputs, verbalized scores and timings.

No script, no external asset: a Content-Security-Policy forbids fetching anything, so the page
opens the same offline, in a mail attachment or in a CI artifact. The page is a Jinja2 template
(``templates/run_report.html.j2``, package data) rendered with autoescape: claims, evidence, prompts
and model outputs are always escaped; the graph's SVG, which :mod:`claimflow.debug.render` builds
with its own escaping, is the one piece passed in as markup.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup
from pydantic import BaseModel

from claimflow._version import __version__
from claimflow.debug.render import CSP, END, START, layout, to_svg
from claimflow.graphs.trace import ModelCall, NodeTrace
from claimflow.graphs.trace_store import RunInfo
from claimflow.io import html_templates
from claimflow.types import EvidenceStance, Justifications, LabelScores, VerificationResult

MAX_CALLS_SHOWN = 25


def stance_class(label: str | None, support_label: str = "SUPPORT", refute_label: str = "REFUTE") -> str:
    if label is None:
        return "stance-unparsed"
    if label == support_label:
        return "stance-support"
    if label == refute_label:
        return "stance-refute"
    return "stance-neutral"


def _candidate_rows(call: ModelCall) -> list[tuple[str, float | None, float | None]]:
    """(candidate, raw log-probability, softmax share over the returned candidates) per candidate;
    ``None``s for one the engine did not return."""
    lp = call.logprobs or {}
    finite = {c: v for c, v in lp.items() if v is not None and math.isfinite(v)}
    top = max(finite.values(), default=0.0)
    z = sum(math.exp(v - top) for v in finite.values()) or 1.0
    return [(c, lp[c], math.exp(lp[c] - top) / z) if c in finite else (c, None, None) for c in call.candidates]


@dataclass(frozen=True)
class _EvidenceRow:
    index: int
    sentence: str
    stance: EvidenceStance | None
    css_class: str
    used_by: list[str] = field(default_factory=list)


def _evidence_rows(result: VerificationResult, support: str, refute: str) -> list[_EvidenceRow]:
    used: dict[int, list[str]] = {}
    if result.justifications is not None:
        for j in (result.justifications.support, result.justifications.refute):
            for i in j.evidence_indices:
                used.setdefault(i, []).append(j.side)
    stances = {s.index: s for s in result.evidence_stances}
    rows = []
    for i, sentence in enumerate(result.evidence):
        s = stances.get(i)
        cls = stance_class(s.label, support, refute) if s else "stance-none"
        rows.append(_EvidenceRow(i, sentence, s, cls, used.get(i, [])))
    return rows


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _is_stance_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, EvidenceStance) for v in value)


@cache
def _templates() -> jinja2.Environment:
    env = html_templates("claimflow.debug", keep_trailing_newline=True)
    env.filters.update(when=_when, repr=repr)
    env.tests.update(
        label_scores=lambda v: isinstance(v, LabelScores),
        justifications=lambda v: isinstance(v, Justifications),
        stance_list=_is_stance_list,
        string_list=lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        pydantic_model=lambda v: isinstance(v, BaseModel),
    )
    env.globals.update(
        stance_class=stance_class, candidate_rows=_candidate_rows, max_calls_shown=MAX_CALLS_SHOWN, version=__version__
    )
    return env


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
    path = [START, *stages_run] + ([END] if result is not None else [])
    run_id = (result.run_id if result else None) or (run.run_id if run else None)
    # the one piece of markup handed to the template: the SVG render.py builds, escaping its own text
    svg = Markup(to_svg(layout(drawable), path=path, links=True, title="path taken"))
    page = _templates().get_template("run_report.html.j2")
    return page.render(
        title=f"claimflow run {run_id}" if run_id else "claimflow verification",
        claim=result.claim if result else str(state.get("claim", "")),
        csp=CSP,
        svg=svg,
        state=state,
        result=result,
        run=run,
        stages_run=stages_run,
        trace=trace,
        inputs_by_node=inputs_by_node or {},
        evidence_rows=_evidence_rows(result, support_label, refute_label) if result is not None else [],
        support=support_label,
        refute=refute_label,
        generated_at=generated_at,
    )

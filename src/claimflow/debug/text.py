"""Plain-text views of runs for the terminal: stream lines, the trace of a run, a replay's changes."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from claimflow.graphs.trace import BOOKKEEPING_KEYS, ModelCall, NodeTrace
from claimflow.graphs.trace_store import RunInfo
from claimflow.types import EvidenceStance, Justifications, LabelScores

SHORT = 240


def clip(text: str, full: bool = False, limit: int = SHORT) -> str:
    if full or len(text) <= limit:
        return text
    return text[: limit - 1] + f"… [{len(text)} chars; --full shows all]"


def dist(probabilities: Mapping[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:.2f}" for k, v in probabilities.items()) + "}"


def scores_line(s: LabelScores | EvidenceStance) -> str:
    p = s.probabilities.get(s.label, 0.0) if s.label else 0.0
    line = f"{s.label or 'UNPARSED'} p={p:.2f} {dist(s.probabilities)}"
    if isinstance(s, EvidenceStance) and s.relevance is not None:
        line += f" relevance={s.relevance:.2f}" + ("" if s.used else " (not used)")
    if s.parse_error:
        line += f"  parse error: {s.parse_error}"
    if s.raw_output is not None:
        line += f"  raw: {s.raw_output!r}"
    return line


def value_lines(key: str, value: Any, full: bool = False) -> list[str]:
    """``key = value`` as one or more lines, the result types shown compactly."""
    if isinstance(value, LabelScores):
        return [f"{key} = {scores_line(value)}"]
    if isinstance(value, Justifications):
        return [
            f"{key}.support = {clip(value.support.text, full)!r} (evidence {value.support.evidence_indices})",
            f"{key}.refute = {clip(value.refute.text, full)!r} (evidence {value.refute.evidence_indices})",
        ]
    if isinstance(value, list) and value and all(isinstance(v, EvidenceStance) for v in value):
        return [f"{key} ({len(value)}):"] + [
            f"  [{s.index}] {scores_line(s)}  {clip(s.text, full, 120)}" for s in value
        ]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [f"{key} ({len(value)}):"] + [f"  [{i}] {clip(v, full)}" for i, v in enumerate(value)]
    if isinstance(value, BaseModel):
        return [f"{key} = {clip(value.model_dump_json(), full)}"]
    if isinstance(value, str):
        return [f"{key} = {clip(value, full)!r}"]
    return [f"{key} = {value!r}"]


def _logprob_line(call: ModelCall) -> str:
    if call.logprobs is None:
        return "raw log-probs: (none)"
    parts = []
    for cand in call.candidates:
        lp = call.logprobs.get(cand)
        parts.append(f"{cand!r}={lp:.3f}" if lp is not None and math.isfinite(lp) else f"{cand!r}=(missing)")
    return "raw log-probs: " + ", ".join(parts)


def call_lines(number: int, call: ModelCall, full: bool = False) -> list[str]:
    head = f"#{number} {call.kind} · {call.backend} · batch {call.batch} · {call.seconds:.3f}s"
    if call.params:
        head += " · " + ", ".join(f"{k}={v}" for k, v in call.params.items())
    lines = [head]
    for message in call.messages:
        lines.append(f"  [{message.role}]")
        lines += ["    │ " + line for line in clip(message.content, full, 600).split("\n")]
    if call.assistant_prefix:
        lines.append(f"  [assistant prefix] {call.assistant_prefix!r}")
    if call.kind == "score":
        lines.append("  → " + _logprob_line(call))
    else:
        lines.append(f"  → raw output: {clip(call.output or '', full, 600)!r}")
    if call.error:
        lines.append(f"  ERROR: {call.error}")
    return lines


def node_header(entry: NodeTrace) -> str:
    head = (
        f"{entry.node}  {entry.seconds:.3f}s · {entry.model_calls} model call(s) · "
        f"{entry.forward_passes} forward pass(es)"
    )
    if entry.inherited_from:
        head += f" · copied from run {entry.inherited_from} (not re-run)"
    return head


def format_update(node: str, update: Mapping[str, Any]) -> str:
    """One line (or a few) for ``verify --stream``: what a node just decided."""
    seconds = update.get("node_seconds", {}).get(node, 0.0)
    calls = update.get("model_calls", {}).get(node, 0)
    out = f"✓ {node} ({seconds:.2f}s, {calls} call(s))"
    if "gate" in update and isinstance(update.get("check_worthiness"), LabelScores):
        out += f": {scores_line(update['check_worthiness'])}; gate {update['gate']}"
    elif "evidence_stances" in update:
        stances: Sequence[EvidenceStance] = update["evidence_stances"]
        counts: dict[str, int] = {}
        for s in stances:
            counts[s.label or "UNPARSED"] = counts.get(s.label or "UNPARSED", 0) + 1
        out += ": " + ", ".join(f"{k} {v}" for k, v in counts.items())
    elif isinstance(update.get("justifications"), Justifications):
        j = update["justifications"]
        out += f": support {clip(j.support.text, limit=80)!r}; refute {clip(j.refute.text, limit=80)!r}"
    elif isinstance(update.get("veracity"), LabelScores):
        out += f": {scores_line(update['veracity'])}"
    return out


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def run_header(info: RunInfo) -> list[str]:
    lines = [f"run {info.run_id} · {_when(info.created)} · {info.status}", f"claim: {info.claim}"]
    if info.parent_run:
        lines.append(f"replay of {info.parent_run} from {info.from_node}: {'; '.join(info.changes) or 'no changes'}")
    result = info.result
    if result is not None:
        verdict = scores_line(result.veracity) if result.veracity else "-"
        lines.append(f"status: {result.status} · veracity: {verdict}")
        lines.append("prompts: " + ", ".join(f"{k}={v}" for k, v in result.provenance.prompts.items()))
    if info.error:
        lines.append(f"error: {info.error}")
    return lines


def _changed_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    return [k for k in after if k not in before or before[k] != after[k]]


def format_history(history: Sequence[Any]) -> list[str]:
    """One line per checkpoint, oldest first: step, source, what changed, what runs next."""
    lines = [f"state history ({len(history)} checkpoints, oldest first):"]
    previous: Any = None
    for snapshot in history:
        meta = snapshot.metadata or {}
        before = previous.values if previous is not None else {}
        changed = [k for k in _changed_keys(before, snapshot.values) if k not in BOOKKEEPING_KEYS]
        source = meta.get("source", "?")
        if source == "loop" and previous is not None and previous.next:
            what = f"{', '.join(previous.next)} wrote {', '.join(changed) or 'nothing new'}"
        elif source == "update":
            what = f"forked state written: {', '.join(changed) or '-'}"
        else:
            what = f"input: {', '.join(changed) or '-'}"
        nxt = ", ".join(snapshot.next) or "END"
        checkpoint = snapshot.config["configurable"].get("checkpoint_id", "")
        lines.append(f"  step {meta.get('step', '?'):>2}  {source:<6} {checkpoint}  {what}  → next: {nxt}")
        previous = snapshot
    return lines


def _inputs_before(history: Sequence[Any], node: str) -> Mapping[str, Any]:
    for snapshot in reversed(history):
        if node in snapshot.next:
            return dict(snapshot.values)
    return dict(history[-1].values) if history else {}


def format_trace(
    info: RunInfo | None,
    history: Sequence[Any],
    *,
    node: str | None = None,
    full: bool = False,
    max_calls: int = 3,
) -> str:
    """The whole story of a run: header, checkpoints, then per node its inputs, model calls
    (rendered prompts, raw outputs), verbalized scores and timing."""
    lines = run_header(info) if info else []
    lines.append("")
    lines += format_history(history)
    final = dict(history[-1].values) if history else {}
    entries: list[NodeTrace] = list(final.get("trace", []))
    if node is not None:
        entries = [e for e in entries if e.node == node]
        if not entries:
            lines.append(f"\n(node {node!r} did not run in this run)")
    for i, entry in enumerate(entries, 1):
        lines += ["", f"── node {i}/{len(entries)}: {node_header(entry)}", "inputs:"]
        inputs = _inputs_before(history, entry.node)
        for key in entry.reads:
            if key in inputs:
                lines += ["  " + line for line in value_lines(key, inputs[key], full)]
            else:
                lines.append(f"  {key} = (absent)")
        shown = entry.calls if max_calls < 0 else entry.calls[:max_calls]
        lines.append(f"model calls ({len(entry.calls)}):" if entry.calls else "model calls: none")
        for n, call in enumerate(shown, 1):
            lines += ["  " + line for line in call_lines(n, call, full)]
        if len(shown) < len(entry.calls):
            lines.append(f"  … {len(entry.calls) - len(shown)} more (--calls -1 shows all)")
        lines.append("outputs (verbalized):")
        for key in entry.writes:
            if key == "prompts":
                lines += [
                    f"  prompt {k} = {v}" for k, v in final.get("prompts", {}).items() if k.startswith(entry.node)
                ]
            elif key in final:
                lines += ["  " + line for line in value_lines(key, final[key], full)]
    return "\n".join(lines) + "\n"


def format_replay(outcome: Any) -> str:
    lines = [
        f"replay {outcome.run_id} of run {outcome.parent.run_id} from {outcome.from_node}",
        "changes: " + ("; ".join(outcome.changes) or "none (a plain re-run)"),
        "",
        "what changed in the result:",
    ]
    lines += ["  " + line for line in outcome.diff]
    lines += ["", outcome.after.summary()]
    return "\n".join(lines) + "\n"

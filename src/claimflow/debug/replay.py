"""Time travel: re-run a stored run from one node, with edited state or other prompt versions.

A replay never rewrites history. It reads the parent run's checkpoint taken just before
``from_node``, applies the edits, writes that state as the first checkpoint of a *new* run (LangGraph
``update_state(..., as_node=<previous stage>)``), and lets the graph go on from there; the nodes
before ``from_node`` are not re-run (their trace entries are copied, marked ``inherited_from``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import TypeAdapter, ValidationError

from claimflow.config import STAGE_ORDER, PipelineConfig, StageName
from claimflow.errors import ConfigError, InputError
from claimflow.graphs.state import VerificationState
from claimflow.graphs.trace import BOOKKEEPING_KEYS, NodeTrace
from claimflow.graphs.trace_store import RunInfo, TraceStore, new_run_id
from claimflow.llm.base import Backend
from claimflow.types import EvidenceStance, LabelScores, VerificationResult
from claimflow.verifier import Verifier

PROMPT_KEYS: dict[str, tuple[StageName, str]] = {
    "check_worthiness": ("check_worthiness", "template"),
    "evidence_stance": ("evidence_stance", "template"),
    "justify_support": ("justify", "support_template"),
    "justify_refute": ("justify", "refute_template"),
    "veracity": ("veracity", "template"),
}
"""``--prompt KEY=ID@V`` keys (the keys of ``provenance.prompts``) → (stage, config field)."""

PathPart = str | int


@dataclass(frozen=True)
class Edit:
    """``--set PATH=VALUE``: a dotted path into the state (list items by index) and a value."""

    path: tuple[PathPart, ...]
    value: Any
    text: str

    @classmethod
    def parse(cls, text: str) -> Edit:
        if "=" not in text:
            raise InputError(f"--set {text!r}: write PATH=VALUE, e.g. evidence_stances.0.label=REFUTE")
        raw_path, raw_value = text.split("=", 1)
        parts: list[PathPart] = [int(p) if p.lstrip("-").isdigit() else p for p in raw_path.strip().split(".")]
        if not parts or not isinstance(parts[0], str) or not parts[0]:
            raise InputError(f"--set {text!r}: the path must start with a state key")
        try:
            value = json.loads(raw_value)
        except json.JSONDecodeError:
            value = raw_value
        return cls(tuple(parts), value, text)


def parse_prompt_override(text: str) -> tuple[str, str]:
    """``STAGE=ID@V`` → (prompt key, template ref)."""
    key, sep, ref = text.partition("=")
    key, ref = key.strip(), ref.strip()
    if not sep or not ref:
        raise InputError(f"--prompt {text!r}: write STAGE=ID@V, e.g. veracity=veracity_justifications_rawfc@1")
    if key not in PROMPT_KEYS:
        raise InputError(f"--prompt {text!r}: unknown stage {key!r}; choose from {sorted(PROMPT_KEYS)}")
    return key, ref


def with_prompts(config: PipelineConfig, prompts: Mapping[str, str]) -> PipelineConfig:
    """``config`` with other templates for the given prompt keys (validated like any config); a stage
    that ran a trained predictor is switched to the prompted one with that template."""
    if not prompts:
        return config
    data = config.model_dump(mode="json")
    for key, ref in prompts.items():
        stage, name = PROMPT_KEYS[key]
        data[stage][name] = ref
        if "predictor" in data[stage]:
            data[stage]["predictor"] = "prompt"
    return PipelineConfig.from_dict(data, origin="replay config")


_HINTS: dict[str, Any] = get_type_hints(VerificationState)


def apply_edits(values: Mapping[str, Any], edits: Sequence[Edit]) -> dict[str, Any]:
    """A copy of the state ``values`` with the edits applied; every edited key is re-validated."""
    out = dict(values)
    for edit in edits:
        key = str(edit.path[0])
        if key not in _HINTS:
            raise InputError(f"--set {edit.text!r}: {key!r} is not a state key (one of {sorted(_HINTS)})")
        if key in BOOKKEEPING_KEYS:
            raise InputError(f"--set {edit.text!r}: {key!r} is bookkeeping the graph writes; it cannot be edited")
        adapter: TypeAdapter[Any] = TypeAdapter(_HINTS[key])
        if len(edit.path) == 1:
            new = edit.value
        else:
            if key not in out:
                raise InputError(f"--set {edit.text!r}: the state has no {key!r} at this point of the run")
            new = adapter.dump_python(out[key], mode="json")
            _set_path(new, edit.path[1:], edit.value, edit.text)
        try:
            out[key] = adapter.validate_python(new)
        except ValidationError as exc:
            raise InputError(f"--set {edit.text!r}: the new {key!r} is not valid: {exc.errors()[0]['msg']}") from exc
    return out


def _set_path(container: Any, path: Sequence[PathPart], value: Any, text: str) -> None:
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(container, list) and isinstance(part, int):
            if not -len(container) <= part < len(container):
                raise InputError(f"--set {text!r}: index {part} is out of range (length {len(container)})")
        elif isinstance(container, dict) and isinstance(part, str):
            if not last and part not in container:
                raise InputError(f"--set {text!r}: no {part!r} in {sorted(container)}")
        else:
            raise InputError(f"--set {text!r}: cannot index {type(container).__name__} with {part!r}")
        if last:
            container[part] = value
        else:
            container = container[part]


# --- the fork ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayOutcome:
    parent: RunInfo
    run_id: str
    from_node: str
    changes: list[str]
    before: VerificationResult | None
    after: VerificationResult
    state: dict[str, Any]

    @property
    def diff(self) -> list[str]:
        if self.before is None:
            return ["the parent run has no result (it failed or is still running): nothing to compare"]
        return diff_results(self.before, self.after)


def _first_reader(trace: Sequence[NodeTrace], keys: set[str], stages: Sequence[str]) -> str | None:
    for entry in trace:
        if entry.node in stages and keys & set(entry.reads):
            return entry.node
    return None


def choose_from_node(
    config: PipelineConfig, trace: Sequence[NodeTrace], edits: Sequence[Edit], prompts: Mapping[str, str]
) -> str:
    """The earliest stage a change affects: a stage whose prompt changes, or the first node that
    read an edited key."""
    candidates: list[str] = [PROMPT_KEYS[k][0] for k in prompts]
    if edits:
        reader = _first_reader(trace, {str(e.path[0]) for e in edits}, config.stages)
        if reader is None:
            raise InputError(
                "no node of this run read the edited key(s); say where to start with --from NODE "
                f"(one of {list(config.stages)})"
            )
        candidates.append(reader)
    if not candidates:
        raise InputError(f"say where to start with --from NODE (one of {list(config.stages)}), or give --set/--prompt")
    return min(candidates, key=STAGE_ORDER.index)


INPUT_KEYS = ("claim", "evidence", "force")


def _fork_values(history: Sequence[Any], prefix: Sequence[str]) -> dict[str, Any] | None:
    """The newest checkpoint's values whose completed stages are exactly ``prefix``; from the first
    stage on, only the inputs matter (also for a replay, whose history starts at its fork)."""
    for snapshot in reversed(history):
        values = snapshot.values
        if "claim" in values and list(values.get("stages_run", [])) == list(prefix):
            return dict(values)
    if not prefix:
        first = next((s.values for s in history if "claim" in s.values), None)
        return {k: first[k] for k in INPUT_KEYS if k in first} if first is not None else None
    return None


def replay(
    store: TraceStore,
    run_id: str,
    *,
    from_node: str | None = None,
    edits: Sequence[Edit] = (),
    prompts: Mapping[str, str] | None = None,
    backends: Mapping[str, Backend] | None = None,
    backend_factory: Any = None,
    new_id: str | None = None,
) -> ReplayOutcome:
    """Fork ``run_id`` just before ``from_node`` into a new run with ``edits`` applied to the state
    and ``prompts`` (prompt key → ``id@version``) swapped in, and run it to the end.

    Models come from the run's stored config (``backends`` injects ready ones, e.g. fakes in tests;
    backends created here are closed at the end)."""
    prompts = dict(prompts or {})
    parent = store.get(run_id)
    try:
        config = with_prompts(parent.config, prompts)
    except ConfigError as exc:
        raise InputError(f"--prompt: {exc}") from exc
    verifier = Verifier(config, backends=backends, backend_factory=backend_factory, trace_store=store)
    try:
        history = list(verifier.graph.get_state_history(parent.thread()))[::-1]
        if not history:
            raise InputError(f"run {parent.run_id} has no checkpoints in {store.path}")
        last_values = history[-1].values
        if from_node is None:
            from_node = choose_from_node(config, last_values.get("trace", []), edits, prompts)
        if from_node not in config.stages:
            raise InputError(f"--from {from_node!r}: not a stage of this run ({list(config.stages)})")
        stages = list(config.stages)
        prefix = stages[: stages.index(from_node)]
        early = [k for k in prompts if PROMPT_KEYS[k][0] in prefix]
        if early:
            raise InputError(
                f"--prompt {', '.join(early)}: that stage runs before --from {from_node}, so its stored output "
                f"would be kept; start at {PROMPT_KEYS[early[0]][0]} or earlier"
            )
        values = _fork_values(history, prefix)
        if values is None:
            ran = list(last_values.get("stages_run", []))
            if (
                parent.parent_run
                and parent.from_node in stages
                and stages.index(from_node) < stages.index(parent.from_node)
            ):
                raise InputError(
                    f"run {parent.run_id} is a replay that starts at {parent.from_node}; replay its parent "
                    f"{parent.parent_run} to start earlier (at {from_node})"
                )
            raise InputError(
                f"run {parent.run_id} never reached {from_node} (it ran {ran}); replay from a stage after one "
                f"it ran, e.g. --from {stages[min(len(ran), len(stages) - 1)]} with --set to open the way"
            )
        values = apply_edits(values, edits)
        values["trace"] = [
            t.model_copy(update={"inherited_from": t.inherited_from or parent.run_id}) for t in values.get("trace", [])
        ]
        changes = [f"set {e.text}" for e in edits] + [f"prompt {k}={v}" for k, v in prompts.items()]
        new_id = new_id or new_run_id()
        graph_input: dict[str, Any] | None
        if prefix:
            verifier.graph.update_state({"configurable": {"thread_id": new_id}}, values, as_node=prefix[-1])
            graph_input = None
        else:
            graph_input = {k: values[k] for k in INPUT_KEYS if k in values}
        run = verifier.run_recorded(
            graph_input, new_id, claim=values["claim"], parent_run=parent.run_id, from_node=from_node, changes=changes
        )
    finally:
        if backends is None:
            verifier.close()
    return ReplayOutcome(
        parent=parent,
        run_id=new_id,
        from_node=from_node,
        changes=changes,
        before=parent.result,
        after=run.result,
        state=run.state,
    )


# --- what changed -------------------------------------------------------------------------------


def _scores(s: LabelScores | None) -> str:
    if s is None:
        return "-"
    return f"{s.label or 'UNPARSED'} (p={s.confidence:.2f})"


def _dist_changes(before: LabelScores, after: LabelScores) -> list[str]:
    out = []
    for label in dict.fromkeys([*before.probabilities, *after.probabilities]):
        a, b = before.probabilities.get(label, 0.0), after.probabilities.get(label, 0.0)
        if abs(a - b) >= 0.005:
            out.append(f"    P({label}) {a:.2f} -> {b:.2f} ({b - a:+.2f})")
    return out


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_scores(stance: EvidenceStance) -> LabelScores:
    return LabelScores(label=stance.label, probabilities=stance.probabilities)


def diff_results(before: VerificationResult, after: VerificationResult) -> list[str]:
    """Human-readable lines: what differs between two results of the same claim."""
    lines: list[str] = []
    if before.claim != after.claim:
        lines.append(f"claim: {_short(before.claim)!r} -> {_short(after.claim)!r}")
    if before.evidence != after.evidence:
        lines.append(f"evidence: {len(before.evidence)} -> {len(after.evidence)} sentences (edited)")
    if before.status != after.status:
        lines.append(f"status: {before.status} -> {after.status}")
    for name in ("check_worthiness", "veracity"):
        a, b = getattr(before, name), getattr(after, name)
        if a == b:
            continue
        if a is None or b is None or a.label != b.label:
            lines.append(f"{name}: {_scores(a)} -> {_scores(b)}")
        else:
            lines.append(f"{name}: {_scores(a)} -> {_scores(b)} (same label)")
        if a is not None and b is not None:
            lines += _dist_changes(a, b)
    stances_b = {s.index: s for s in after.evidence_stances}
    for a in before.evidence_stances:
        b = stances_b.pop(a.index, None)
        if b is None:
            lines.append(f"evidence[{a.index}]: {a.label} -> (not scored)")
        elif a.label != b.label or _dist_changes(_as_scores(a), _as_scores(b)):
            pa, pb = a.probabilities.get(a.label or "", 0.0), b.probabilities.get(b.label or "", 0.0)
            lines.append(f"evidence[{a.index}]: {a.label} ({pa:.2f}) -> {b.label} ({pb:.2f})")
    for b in stances_b.values():
        lines.append(f"evidence[{b.index}]: (not scored) -> {b.label}")
    ja, jb = before.justifications, after.justifications
    for side in ("support", "refute"):
        ta = getattr(ja, side).text if ja else None
        tb = getattr(jb, side).text if jb else None
        if ta != tb:
            lines.append(f"{side} justification:")
            lines.append(f"    - {_short(ta) if ta is not None else '(none)'}")
            lines.append(f"    + {_short(tb) if tb is not None else '(none)'}")
    for key in dict.fromkeys([*before.provenance.prompts, *after.provenance.prompts]):
        ref_a, ref_b = before.provenance.prompts.get(key), after.provenance.prompts.get(key)
        if ref_a != ref_b:
            lines.append(f"prompt {key}: {ref_a} -> {ref_b}")
    return lines or ["no change in the result"]

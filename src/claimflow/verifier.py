"""The public entry points: :class:`Verifier` (load once, verify many) and :func:`verify`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claimflow._version import __version__
from claimflow.config import PipelineConfig
from claimflow.errors import ClaimTooLongError, EmptyClaimError, InputError
from claimflow.graphs.build import build_graph
from claimflow.graphs.components import BackendFactory, Components
from claimflow.graphs.nodes.check_worthiness import is_check_worthy
from claimflow.graphs.state import VerificationState
from claimflow.graphs.trace import NodeTrace
from claimflow.graphs.trace_store import TraceStore, new_run_id
from claimflow.graphs.tracing_backend import TracingBackend
from claimflow.llm.base import Backend
from claimflow.models.store import ModelStore
from claimflow.predictors.encoder import Prefetcher
from claimflow.prompts.registry import TemplateRegistry
from claimflow.prompts.sanitize import clean_text
from claimflow.provenance import git_commit
from claimflow.types import LabelScores, Provenance, Status, VerificationResult

log = logging.getLogger(__name__)

BatchItem = tuple[str, Sequence[str] | None]
"""One claim of :meth:`Verifier.verify_many`: the claim and its evidence sentences."""


@dataclass(frozen=True)
class NodeUpdate:
    """One node finished (from :meth:`Verifier.stream`): what it wrote to the state."""

    node: str
    update: dict[str, Any]
    run_id: str | None = None

    @property
    def seconds(self) -> float:
        return float(self.update.get("node_seconds", {}).get(self.node, 0.0))

    @property
    def trace(self) -> NodeTrace | None:
        entries = self.update.get("trace") or []
        return entries[-1] if entries else None


@dataclass(frozen=True)
class TracedRun:
    """A finished verification with its final graph state, including each node's trace."""

    result: VerificationResult
    state: dict[str, Any] = field(repr=False)
    run_id: str | None = None

    @property
    def trace(self) -> list[NodeTrace]:
        return list(self.state.get("trace", []))


@dataclass(frozen=True)
class _RunMeta:
    """What the runs index records about a run besides its result."""

    claim: str
    parent_run: str | None = None
    from_node: str | None = None
    changes: tuple[str, ...] = ()


class Verifier:
    """A compiled verification graph with its models; reuse it for many claims.

    Models load on first use (or on :meth:`load`). Pass ``backends`` to inject ready backends by
    key (e.g. a :class:`~claimflow.llm.fake.FakeBackend` in tests). Each backend, given or created,
    is wrapped in a :class:`~claimflow.graphs.tracing_backend.TracingBackend` for the runs' traces.

    ``trace_store`` (a path or a :class:`~claimflow.graphs.trace_store.TraceStore`) records every
    run: each step's state in LangGraph's SQLite checkpointer under the run id, and the run in an
    index that ``claimflow runs / trace / replay / report`` read. Without it nothing is stored.
    """

    def __init__(
        self,
        config: PipelineConfig | None = None,
        *,
        backends: Mapping[str, Backend] | None = None,
        store: ModelStore | None = None,
        registry: TemplateRegistry | None = None,
        backend_factory: BackendFactory | None = None,
        trace_store: TraceStore | str | Path | None = None,
    ) -> None:
        self.config = config or PipelineConfig()
        traced = {key: TracingBackend.wrap(backend) for key, backend in (backends or {}).items()}
        self.components = Components(
            self.config,
            registry=registry,
            store=store,
            backends=traced,
            backend_factory=TracingBackend.factory(backend_factory),
        )
        self._owns_trace_store = isinstance(trace_store, str | Path)
        self.trace_store = TraceStore(trace_store) if isinstance(trace_store, str | Path) else trace_store
        self.graph = build_graph(self.components, checkpointer=self.trace_store.saver if self.trace_store else None)

    def load(self) -> Verifier:
        """Load every backend the configured stages use now rather than on first use."""
        for stage in self.config.stages:
            self.components.stage_backend(stage)
        return self

    def close(self) -> None:
        self.components.close()
        if self._owns_trace_store and self.trace_store is not None:
            self.trace_store.close()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- inputs -------------------------------------------------------------------------------

    def _validated(self, claim: str, evidence: Sequence[str] | None) -> tuple[str, list[str]]:
        if not isinstance(claim, str):
            raise InputError(f"the claim must be a string, not {type(claim).__name__}")
        claim = clean_text(claim, "the claim").strip()
        if not claim:
            raise EmptyClaimError("the claim is empty: pass the sentence to verify")
        limits = self.config.limits
        if len(claim) > limits.max_claim_chars:
            raise ClaimTooLongError(
                f"the claim has {len(claim)} characters, more than limits.max_claim_chars={limits.max_claim_chars}: "
                "verify one sentence at a time, or raise the limit if your model's context allows"
            )
        if evidence is None:
            evidence = []
        if isinstance(evidence, str):
            raise InputError("evidence must be a list of sentences, not one string")
        if not isinstance(evidence, list | tuple):
            raise InputError(f"evidence must be a list of sentences, not {type(evidence).__name__}")
        cleaned = []
        for i, sentence in enumerate(evidence):
            if not isinstance(sentence, str):
                raise InputError(f"evidence[{i}] must be a string, not {type(sentence).__name__}")
            sentence = clean_text(sentence, f"evidence[{i}]").strip()
            if not sentence:
                continue
            if len(sentence) > limits.max_evidence_chars:
                raise InputError(
                    f"evidence[{i}] has {len(sentence)} characters, more than limits.max_evidence_chars="
                    f"{limits.max_evidence_chars}: split it into sentences"
                )
            cleaned.append(sentence)
        if len(cleaned) > limits.max_evidence:
            raise InputError(f"{len(cleaned)} evidence sentences, more than limits.max_evidence={limits.max_evidence}")
        if limits.warn_evidence and len(cleaned) > limits.warn_evidence and "evidence_stance" in self.config.stages:
            per = "a model call" if self.config.evidence_stance.predictor == "prompt" else "a classifier pass"
            log.warning(
                "%d evidence sentences: the stance stage scores every one (%s each), so this run may be slow; "
                "pass the sentences that bear on the claim (limits.warn_evidence=%d)",
                len(cleaned),
                per,
                limits.warn_evidence,
            )
        return claim, cleaned

    # --- running ------------------------------------------------------------------------------

    def initial_state(
        self, claim: str, evidence: Sequence[str] | None = None, *, force: bool = False
    ) -> VerificationState:
        claim, cleaned = self._validated(claim, evidence)
        return {"claim": claim, "evidence": cleaned, "force": force}

    def verify(
        self, claim: str, evidence: Sequence[str] | None = None, *, force: bool = False, run_id: str | None = None
    ) -> VerificationResult:
        """Run the graph over one claim. ``force`` runs every stage whatever the check-worthiness gate says.

        With a ``trace_store`` the run is recorded under ``run_id`` (a fresh id when not given)."""
        return self.run(claim, evidence, force=force, run_id=run_id).result

    def verify_many(self, items: Sequence[BatchItem], *, force: bool = False) -> list[VerificationResult | InputError]:
        """Verify many claims with cross-claim batching; one result (or the claim's :class:`InputError`)
        per item, in input order, equal to what :meth:`verify` gives each claim alone.

        The encoder stages are scored for all the claims first, in batched passes over the chunk
        (check-worthiness of every claim, then the stance and relevance of every sentence of the claims
        that pass the gate); the graph then runs claim by claim and reads those scores, so only the
        generative stages run one claim at a time. A predictor that cannot score ahead runs as in
        :meth:`verify`. Per-claim ``forward_passes`` of a prefetched stage are 0 (the passes were shared
        by the chunk); ``model_calls`` count the items as usual. A chunk of one claim is not prefetched
        (nothing to batch across), so it is exactly :meth:`verify`, counters included. Other errors
        than :class:`InputError` propagate.
        """
        states: list[VerificationState | InputError] = []
        for claim, evidence in items:
            try:
                states.append(self.initial_state(claim, evidence, force=force))
            except InputError as exc:
                states.append(exc)
        valid = [s for s in states if not isinstance(s, InputError)]
        # one claim has nothing to batch across: its stages batch its sentences themselves, as verify does
        prefetched = self._prefetch(valid) if len(valid) > 1 else []
        out: list[VerificationResult | InputError] = []
        try:
            for state in states:
                if isinstance(state, InputError):
                    out.append(state)
                    continue
                try:
                    out.append(
                        self._finish(self._events(state, None, _RunMeta(claim=state["claim"]), stream=False)).result
                    )
                except InputError as exc:
                    out.append(exc)
        finally:
            for predictor in prefetched:
                predictor.clear_prefetched()
        return out

    def _prefetch(self, states: Sequence[VerificationState]) -> list[Prefetcher]:
        """Score the encoder stages of ``states`` ahead (see :meth:`verify_many`); the predictors that did."""
        stages, used = self.config.stages, list[Prefetcher]()
        open_gate = [s for s in states if s["evidence"]]
        if "check_worthiness" in stages:
            gate = self.components.classifier("check_worthiness")
            if isinstance(gate, Prefetcher) and states:
                inputs = [{"claim": s["claim"]} for s in states]
                gate.prefetch(inputs)
                used.append(gate)
                if len(stages) > 1:
                    scores = gate.predict([{"claim": s["claim"]} for s in open_gate])
                    open_gate = [s for s, sc in zip(open_gate, scores, strict=True) if s["force"] or self._worthy(sc)]
            else:  # the gate is not known ahead: only forced claims surely reach the stance stage
                open_gate = [s for s in open_gate if s["force"]]
        if "evidence_stance" in stages and open_gate:
            stance = self.components.classifier("evidence_stance")
            if isinstance(stance, Prefetcher):
                stance.prefetch([{"claim": s["claim"], "sentence": e} for s in open_gate for e in s["evidence"]])
                used.append(stance)
        return used

    def _worthy(self, scores: LabelScores) -> bool:
        """Whether the check-worthiness gate lets a claim on to the stance stage (to know ahead which claims
        reach it; a wrong guess costs time, not correctness)."""
        cfg = self.config.check_worthiness
        return cfg.gate == "annotate" or is_check_worthy(scores, cfg)

    def run(
        self,
        claim: str,
        evidence: Sequence[str] | None = None,
        *,
        force: bool = False,
        run_id: str | None = None,
        on_update: Callable[[NodeUpdate], None] | None = None,
    ) -> TracedRun:
        """Like :meth:`verify`, and also return the final state with each node's trace.
        ``on_update`` is called as each node finishes."""
        state = self.initial_state(claim, evidence, force=force)
        return self._finish(
            self._events(state, run_id, _RunMeta(claim=state["claim"]), stream=on_update is not None), on_update
        )

    def run_recorded(
        self,
        graph_input: Mapping[str, Any] | None,
        run_id: str,
        *,
        claim: str,
        parent_run: str | None = None,
        from_node: str | None = None,
        changes: Sequence[str] = (),
        on_update: Callable[[NodeUpdate], None] | None = None,
    ) -> TracedRun:
        """Run the graph as run ``run_id`` from a prepared state, recording where it came from.

        This is the entry point for tools that fork stored runs (``claimflow replay``,
        :func:`claimflow.debug.replay.replay`); to verify a claim, use :meth:`run`.

        ``graph_input`` is the state to start from (the inputs ``claim`` / ``evidence`` / ``force``,
        not re-validated), or None to go on from the last checkpoint of thread ``run_id`` (one
        written with ``self.graph.update_state(...)``, which needs a ``trace_store``). With a trace
        store the runs index records ``claim`` and the lineage: ``parent_run`` (the run forked),
        ``from_node`` (the first node re-run) and ``changes`` (what was changed, one line each);
        without one nothing is recorded and the lineage is dropped. ``on_update`` is called as each
        node finishes, as in :meth:`run`.
        """
        meta = _RunMeta(claim=claim, parent_run=parent_run, from_node=from_node, changes=tuple(changes))
        return self._finish(self._events(graph_input, run_id, meta, stream=on_update is not None), on_update)

    @staticmethod
    def _finish(
        events: Iterator[NodeUpdate | TracedRun], on_update: Callable[[NodeUpdate], None] | None = None
    ) -> TracedRun:
        for event in events:
            if isinstance(event, TracedRun):
                return event
            if on_update is not None:
                on_update(event)
        raise AssertionError("the graph run ended without a result")  # pragma: no cover

    def stream(
        self, claim: str, evidence: Sequence[str] | None = None, *, force: bool = False, run_id: str | None = None
    ) -> Iterator[NodeUpdate | VerificationResult]:
        """Yield a :class:`NodeUpdate` as each node finishes, then the :class:`VerificationResult`."""
        state = self.initial_state(claim, evidence, force=force)
        for event in self._events(state, run_id, _RunMeta(claim=state["claim"]), stream=True):
            yield event.result if isinstance(event, TracedRun) else event

    def _events(
        self, graph_input: Mapping[str, Any] | None, run_id: str | None, meta: _RunMeta, *, stream: bool
    ) -> Iterator[NodeUpdate | TracedRun]:
        """Run the graph (from ``graph_input``, or on from the thread's last checkpoint when None),
        recording the run in the trace store if there is one."""
        store = self.trace_store
        if store is not None:
            run_id = run_id or new_run_id()
            store.start_run(
                run_id,
                meta.claim,
                self.config,
                parent_run=meta.parent_run,
                from_node=meta.from_node,
                changes=meta.changes,
            )
        config: dict[str, Any] = {"configurable": {"thread_id": run_id}} if store is not None else {}
        start = time.perf_counter()
        try:
            if stream:
                final: dict[str, Any] = dict(graph_input or {})
                for part in self.graph.stream(graph_input, config, stream_mode=["updates", "values"], version="v2"):
                    if part["type"] == "values":
                        final = part["data"]
                    elif part["type"] == "updates":
                        for node, update in part["data"].items():
                            if not node.startswith("__") and isinstance(update, dict):
                                yield NodeUpdate(node=node, update=update, run_id=run_id)
            else:
                final = self.graph.invoke(graph_input, config)
            result = self.result_from_state(final, total_seconds=time.perf_counter() - start, run_id=run_id)
        except BaseException as exc:
            if store is not None and run_id is not None:
                store.fail_run(run_id, f"{type(exc).__name__}: {exc}")
            raise
        if store is not None and run_id is not None:
            store.finish_run(run_id, result)
        yield TracedRun(result=result, state=dict(final), run_id=run_id)

    def result_from_state(
        self, state: Mapping[str, Any], *, total_seconds: float = 0.0, run_id: str | None = None
    ) -> VerificationResult:
        stages_run = list(state.get("stages_run", []))
        provenance = Provenance(
            claimflow_version=__version__,
            git_commit=git_commit(),
            models={
                stage: self.components.stage_backend(stage).provenance()
                for stage in stages_run
                if stage in self.config.stages
            },
            prompts=dict(state.get("prompts", {})),
            node_seconds=dict(state.get("node_seconds", {})),
            model_calls=dict(state.get("model_calls", {})),
            forward_passes=dict(state.get("forward_passes", {})),
            total_seconds=total_seconds,
        )
        return VerificationResult(
            claim=state["claim"],
            evidence=list(state.get("evidence", [])),
            status=self._status(state, stages_run),
            check_worthiness=state.get("check_worthiness"),
            evidence_stances=list(state.get("evidence_stances", [])),
            justifications=state.get("justifications"),
            veracity=state.get("veracity"),
            stages_run=stages_run,
            provenance=provenance,
            run_id=run_id,
        )

    def _status(self, state: Mapping[str, Any], stages_run: list[str]) -> Status:
        if state.get("gate") == "not_check_worthy":
            return "not_check_worthy"
        needs_evidence = [s for s in self.config.stages if s != "check_worthiness"]
        if needs_evidence and not state.get("evidence"):
            return "no_evidence"
        return "verified" if "veracity" in stages_run and len(stages_run) == 4 else "partial"


def verify(
    claim: str,
    evidence: Sequence[str] | None = None,
    config: PipelineConfig | str | Path | None = None,
    *,
    force: bool = False,
) -> VerificationResult:
    """Verify one claim against its evidence with a fresh :class:`Verifier` (models load each call;
    keep a ``Verifier`` to verify many claims)."""
    if isinstance(config, str | Path):
        config = PipelineConfig.from_yaml(config)
    with Verifier(config) as verifier:
        return verifier.verify(claim, evidence, force=force)

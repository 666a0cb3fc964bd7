"""The server's models: verifier slots, admission and the one-request-per-slot rule.

A :class:`~claimflow.verifier.Verifier` is not safe to call from two threads at once (its backends
keep state between calls: llama.cpp's KV cache, torch modules), so the server holds a pool of
*slots*, each with its own verifier and models, and a request runs on one slot at a time.
``concurrency`` slots run at once (the first is loaded at start-up, the others when two requests
overlap); ``queue`` more requests may wait for one; beyond that a request is refused at once with
:class:`ServerBusyError` (HTTP 503), so a burst cannot pile up unbounded work.

A request that asks for other ``stages`` or another ``gate`` runs on a variant of the slot's verifier
(built on first use, kept for the next, sharing the slot's loaded backends). Everything here is
blocking: the app calls it from worker threads.
"""

from __future__ import annotations

import queue as queue_mod
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from claimflow.config import STAGE_ORDER, GatePolicy, PipelineConfig, StageName
from claimflow.debug.history import no_models
from claimflow.debug.replay import Edit, ReplayOutcome, parse_prompt_override, replay
from claimflow.errors import ClaimflowError, ConfigError, InputError
from claimflow.graphs.trace_store import RunInfo, TraceStore, new_run_id
from claimflow.llm.base import Backend
from claimflow.types import VerificationResult
from claimflow.verifier import NodeUpdate, TracedRun, Verifier

MAX_VARIANTS = 8
"""Variant verifiers (other stages / gate) a slot keeps; the least recently used is dropped beyond."""


class ServerBusyError(ClaimflowError):
    """Every slot is busy and the queue is full: try again shortly (HTTP 503)."""


class RequestTooLargeError(InputError):
    """The request is over one of the server's size limits (HTTP 413)."""


class NotFoundError(InputError):
    """No such run (HTTP 404)."""


def variant_config(
    config: PipelineConfig, stages: Sequence[StageName] | None, gate: GatePolicy | None
) -> PipelineConfig:
    """``config`` with other stages and/or another gate policy (validated like any config)."""
    if stages is not None:
        if not stages:
            raise InputError(f"stages: give at least one of {list(STAGE_ORDER)} (or leave it out)")
        config = config.with_stages(tuple(stages))
    if gate is not None and gate != config.check_worthiness.gate:
        data = config.model_dump(mode="json")
        data["check_worthiness"]["gate"] = gate
        config = PipelineConfig.from_dict(data, origin="request")
    return config


class Slot:
    """One verifier with its models, and its variants for other stages or gate policies."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.base = Verifier(runner.config, backends=runner.given_backends, trace_store=runner.recording_store)
        self.variants: OrderedDict[tuple[tuple[str, ...], str], Verifier] = OrderedDict()

    def verifier(self, stages: Sequence[StageName] | None = None, gate: GatePolicy | None = None) -> Verifier:
        config = variant_config(self.base.config, stages, gate)
        if config == self.base.config:
            return self.base
        key = (config.stages, config.check_worthiness.gate)
        if key in self.variants:
            self.variants.move_to_end(key)
            return self.variants[key]
        shared = self.runner.given_backends or self.base.components.loaded_backends()
        built = Verifier(config, backends=shared, trace_store=self.runner.recording_store)
        self.variants[key] = built
        if len(self.variants) > MAX_VARIANTS:
            # dropped, not closed: closing would close the backends it shares with the slot
            self.variants.popitem(last=False)
        return built

    def close(self) -> None:
        for verifier in [*self.variants.values(), self.base]:
            verifier.close()  # backends' close() is idempotent: shared ones close once in effect
        self.variants.clear()


class Ticket:
    """A place among the requests in flight (running or waiting); release it exactly once."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.runner.release(self)


class Runner:
    """The slots, the admission limit, and the blocking operations the app calls."""

    def __init__(
        self,
        config: PipelineConfig,
        *,
        backends: Mapping[str, Backend] | None = None,
        trace_store: TraceStore | None = None,
        record: bool = True,
        concurrency: int = 1,
        queue: int = 8,
        preload: bool = True,
    ) -> None:
        if concurrency < 1:
            raise InputError(f"concurrency must be at least 1, not {concurrency}")
        if queue < 0:
            raise InputError(f"queue must be 0 or more, not {queue}")
        self.config = config
        self.given_backends = dict(backends) if backends else None
        self.trace_store = trace_store
        self.recording_store = trace_store if record else None
        self.concurrency = concurrency
        self.queue = queue
        self._lock = threading.Lock()
        self._in_flight = 0
        self._idle: queue_mod.LifoQueue[Slot] = queue_mod.LifoQueue()  # the warmest slot first
        self._slots: list[Slot] = []
        self._valid_variants: set[tuple[tuple[str, ...], str]] = set()
        first = self._new_slot()
        if preload:
            first.base.load()
        self._idle.put(first)

    @property
    def recording(self) -> bool:
        return self.recording_store is not None

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def first(self) -> Verifier:
        """The first slot's verifier: its config, graph and input checks (no model call)."""
        return self._slots[0].base

    def _new_slot(self) -> Slot:
        slot = Slot(self)
        self._slots.append(slot)
        return slot

    # --- admission -----------------------------------------------------------------------------

    def admit(self) -> Ticket:
        """A place in flight, or :class:`ServerBusyError` when ``concurrency + queue`` are taken."""
        with self._lock:
            if self._in_flight >= self.concurrency + self.queue:
                raise ServerBusyError(
                    f"the server is busy ({self._in_flight} requests running or waiting, at most "
                    f"{self.concurrency + self.queue}): try again shortly, or start it with a larger --queue"
                )
            self._in_flight += 1
        return Ticket(self)

    def release(self, ticket: Ticket) -> None:
        with self._lock:
            self._in_flight -= 1

    @contextmanager
    def slot(self, ticket: Ticket | None = None) -> Iterator[Slot]:
        """Hold a slot for the block (waiting for one if all are busy); admits first unless given a ticket."""
        own = ticket is None
        held = self.admit() if ticket is None else ticket
        try:
            slot = self._take()
            try:
                yield slot
            finally:
                self._idle.put(slot)
        finally:
            if own:
                held.release()

    def _take(self) -> Slot:
        try:
            return self._idle.get_nowait()
        except queue_mod.Empty:
            pass
        with self._lock:
            grow = len(self._slots) < self.concurrency
            slot = self._new_slot() if grow else None
        if slot is not None:
            return slot  # its models load on first use
        return self._idle.get()

    # --- operations ----------------------------------------------------------------------------

    def check(
        self,
        claim: str,
        evidence: Sequence[str] | None,
        *,
        force: bool = False,
        stages: Sequence[StageName] | None = None,
        gate: GatePolicy | None = None,
    ) -> None:
        """The checks a verification makes before it runs: :class:`InputError` on a bad claim or evidence,
        :class:`~claimflow.errors.ConfigError` when ``stages`` / ``gate`` make no valid pipeline (the
        graph is built once per variant to find out; no model is loaded)."""
        self.first.initial_state(claim, evidence, force=force)
        config = variant_config(self.config, stages, gate)
        key = (config.stages, config.check_worthiness.gate)
        if config != self.config and key not in self._valid_variants:
            Verifier(config, backend_factory=no_models).close()
            with self._lock:
                self._valid_variants.add(key)

    def run(
        self,
        claim: str,
        evidence: Sequence[str],
        *,
        force: bool = False,
        stages: Sequence[StageName] | None = None,
        gate: GatePolicy | None = None,
        ticket: Ticket | None = None,
        on_start: Callable[[str | None, list[str]], None] | None = None,
        on_update: Callable[[NodeUpdate], None] | None = None,
    ) -> TracedRun:
        with self.slot(ticket) as slot:
            verifier = slot.verifier(stages, gate)
            run_id = new_run_id() if self.recording else None
            if on_start is not None:
                on_start(run_id, list(verifier.config.stages))
            return verifier.run(claim, evidence, force=force, run_id=run_id, on_update=on_update)

    def verify_many(self, items: Sequence[Mapping[str, Any]]) -> list[VerificationResult]:
        """Each item (``claim``, ``evidence``, ``force``, ``stages``, ``gate``) checked, then all run on one slot."""
        for i, item in enumerate(items):
            try:
                self.check(
                    item["claim"],
                    item.get("evidence"),
                    force=bool(item.get("force")),
                    stages=item.get("stages"),
                    gate=item.get("gate"),
                )
            except (InputError, ConfigError) as exc:
                raise type(exc)(f"items[{i}]: {exc}") from exc
        results = []
        with self.slot() as slot:
            for item in items:
                verifier = slot.verifier(item.get("stages"), item.get("gate"))
                run_id = new_run_id() if self.recording else None
                results.append(
                    verifier.verify(item["claim"], item.get("evidence"), force=bool(item.get("force")), run_id=run_id)
                )
        return results

    def replay(
        self,
        run_id: str,
        *,
        from_node: str | None = None,
        edits: Sequence[str] = (),
        prompts: Mapping[str, str] | None = None,
    ) -> ReplayOutcome:
        """Fork a recorded run (:func:`claimflow.debug.replay.replay`) on a slot's models."""
        store = self.recording_store
        if store is None:
            raise InputError("this server does not record runs (started with --no-record): nothing to replay into")
        parsed_edits = [Edit.parse(text) for text in edits]
        parsed_prompts = dict(parse_prompt_override(f"{key}={ref}") for key, ref in (prompts or {}).items())
        parent = self.stored(run_id)
        with self.slot() as slot:
            backends = self.given_backends
            if backends is None:
                # the slot's loaded models, for each backend the stored run configures the same way
                served, stored = self.config.backends, parent.config.backends
                loaded = slot.base.components.loaded_backends()
                backends = {k: b for k, b in loaded.items() if k in stored and stored[k] == served.get(k)} or None
            return replay(
                store, parent.run_id, from_node=from_node, edits=parsed_edits, prompts=parsed_prompts, backends=backends
            )

    def stored(self, run_id: str) -> RunInfo:
        """The runs index row of ``run_id`` (:class:`NotFoundError` when there is none)."""
        if self.trace_store is None:
            raise NotFoundError("this server has no runs database")
        try:
            return self.trace_store.get(run_id)
        except InputError as exc:
            if "ambiguous" in str(exc):
                raise
            raise NotFoundError(str(exc)) from exc

    def close(self) -> None:
        for slot in self._slots:
            slot.close()
        self._slots.clear()

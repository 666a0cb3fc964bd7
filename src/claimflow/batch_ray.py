"""``claimflow batch --engine ray`` and ``claimflow eval run --engine ray``: claims verified, and A/B
variants predicted, on a Ray cluster.

Ray Data reads the input file (``read_text``: one row per line, in file order), keeps the pending
ids (the ones not yet in the output), and maps chunks of ``chunk_size`` claims over a pool of
``actors`` :class:`VerifierActor`\\ s, each holding one :class:`~claimflow.verifier.Verifier` (one
model load per actor, ``cpus_per_actor`` / ``gpus_per_actor`` reserved for it). The result lines come
back in input order (``preserve_order``) and the driver appends them through the same writer as the
local engine (:func:`claimflow.batch.write_batch`): a rerun skips finished ids, a crash loses at most
the chunks in flight, and the lines equal the local engine's.

:func:`run_ab_ray` does the same for an A/B run: per variant, the pending items are mapped in chunks
of ``batch_size`` over a pool of :class:`VariantActor` actors (each builds the variant's classifier once)
and the driver commits each row to the SQLite run store as it comes back, so a rerun resumes as
``eval run`` does. The actors make their own backends from the spec: the run store's model-call cache
is not shared with them (a cluster has no common SQLite file).

``ray`` is imported when a run starts (``pip install 'claimflow[ray]'``); the core never needs it.
Without ``address`` a running cluster named by ``RAY_ADDRESS`` is joined, else a local instance
starts; ``address="ray://head:10001"`` (Ray Client) or ``"auto"`` joins an existing cluster. The
input path must be readable where the Ray Data tasks run (a local path on one machine; shared
storage such as NFS or ``s3://`` on a cluster); the output is written by the driver.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claimflow.batch import (
    DEFAULT_CHUNK_SIZE,
    BatchSummary,
    Record,
    VerifierFactory,
    verify_records,
    write_batch,
)
from claimflow.errors import BackendUnavailableError, ConfigError, InputError

if TYPE_CHECKING:
    from claimflow.evals.ab import ABSpec, RunSummary
    from claimflow.evals.store import RunStore

__all__ = ["RayOptions", "VariantActor", "VerifierActor", "ensure_ray", "run_ab_ray", "run_batch_ray"]


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a Ray run is: the cluster ``address`` (None: ``RAY_ADDRESS`` or a local
    instance), the actor pool size and each actor's resources, and, for a local instance it starts,
    its ``num_cpus``."""

    address: str | None = None
    actors: int = 2
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    num_cpus: int | None = None


def ensure_ray(options: RayOptions) -> Any:
    """The ``ray`` module, connected: an already initialised Ray is used as it is; otherwise
    ``ray.init`` joins ``options.address`` (or ``RAY_ADDRESS``), else starts a local instance. Ray's
    own output stays quiet (workers' logs are not forwarded to this process)."""
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailableError("the Ray engine needs Ray: pip install 'claimflow[ray]'") from exc
    if not ray.is_initialized():
        ray.init(
            address=options.address,
            num_cpus=options.num_cpus if options.address is None else None,
            log_to_driver=False,
            logging_level=logging.WARNING,
            include_dashboard=False,
            configure_logging=True,
        )
    for name in ("ray", "ray.data", "ray.data._internal"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return ray


class VerifierActor:
    """One Ray actor: builds its verifier once, then turns batches of input lines into result lines."""

    def __init__(self, factory: VerifierFactory, force: bool) -> None:
        self.verifier = factory()
        self.force = force

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        records = [json.loads(text) for text in batch["text"]]
        lines = verify_records(self.verifier, records, force=self.force)
        return {"line": [json.dumps(line, ensure_ascii=False) for line in lines]}


def _pending_filter(pending: set[str]) -> Callable[[dict[str, Any]], bool]:
    def keep(row: dict[str, Any]) -> bool:
        text = str(row["text"]).lstrip("\ufeff")
        if not text.strip():
            return False
        return str(json.loads(text)["id"]) in pending

    return keep


def _strip_bom(row: dict[str, Any]) -> dict[str, Any]:
    return {"text": str(row["text"]).lstrip("\ufeff")}


def run_batch_ray(
    factory: VerifierFactory,
    input_file: str | Path,
    items: Iterable[tuple[str, Record]],
    output: Path,
    *,
    options: RayOptions | None = None,
    force: bool = False,
    retry_errors: bool = False,
    on_item: Callable[[str, bool], None] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    encoding: str = "utf-8",
) -> BatchSummary:
    """Verify the pending items of ``input_file`` on Ray and append their lines to ``output``.

    ``items`` are the file's records as :func:`claimflow.batch.load_items` read and checked them
    (ids present and unique): they decide what is pending; Ray Data reads the file itself.
    ``factory`` builds each actor's verifier (e.g. :class:`claimflow.batch.ConfigVerifier`) and must
    pickle. See the module docstring for the cluster settings.
    """
    options = options or RayOptions()
    if options.actors < 1:
        raise InputError(f"the Ray engine needs at least one actor, not {options.actors}")

    def lines(pending: list[Record]) -> Iterator[Record]:
        ray = ensure_ray(options)
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        ids = {str(r["id"]) for r in pending}
        with warnings.catch_warnings():  # Ray suggests expressions for filters; a row function is what this needs
            warnings.simplefilter("ignore", UserWarning)
            dataset = _dataset(ray, ids)
        for row in dataset.iter_rows():
            yield json.loads(row["line"])

    def _dataset(ray: Any, ids: set[str]) -> Any:
        return (
            # reading and filtering reserve no CPU, so that actors holding every CPU cannot starve them
            ray.data.read_text(str(input_file), encoding=encoding, num_cpus=0)
            .filter(_pending_filter(ids), num_cpus=0)
            .map(_strip_bom, num_cpus=0)
            .map_batches(
                VerifierActor,
                fn_constructor_kwargs={"factory": factory, "force": force},
                batch_size=chunk_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=options.actors),
                num_cpus=options.cpus_per_actor,
                num_gpus=options.gpus_per_actor,
            )
        )

    return write_batch(items, output, lines, retry_errors=retry_errors, on_item=on_item)


class VariantActor:
    """One Ray actor of an A/B run: builds one variant's classifier once, then turns batches of items
    (id, inputs as JSON, gold) into run-store rows (as JSON)."""

    def __init__(self, spec: dict[str, Any], variant: str, data_dir: str | None) -> None:
        from claimflow.evals.ab import ABSpec, VariantPredictor

        ab = ABSpec.model_validate(spec)
        chosen = next(v for v in ab.variants if v.name == variant)
        self.predictor = VariantPredictor(ab, chosen, data_dir=Path(data_dir) if data_dir else None)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        from dataclasses import asdict

        from claimflow.evals.ab import Item

        items = [
            Item(str(i), json.loads(str(inputs)), str(gold))
            for i, inputs, gold in zip(batch["id"], batch["inputs"], batch["gold"], strict=True)
        ]
        return {"row": [json.dumps(asdict(row), ensure_ascii=False) for row in self.predictor.rows(items)]}


def run_ab_ray(
    spec: ABSpec,
    store: RunStore,
    *,
    options: RayOptions | None = None,
    data_dir: Path | None = None,
    git_commit: str | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    batch_size: int = 16,
) -> RunSummary:
    """:func:`claimflow.evals.ab.run_ab` on Ray: the same items, rows and resume rules; see the
    module docstring. ``data_dir`` (for n-shot demo pools) must be readable where the actors run."""
    import time
    from dataclasses import fields as dataclass_fields

    from claimflow.evals.ab import RunSummary, start_ab_run
    from claimflow.evals.store import PredictionRow

    options = options or RayOptions()
    if options.actors < 1:
        raise InputError(f"the Ray engine needs at least one actor, not {options.actors}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
    start = time.perf_counter()
    items, resumed = start_ab_run(spec, store, data_dir, git_commit)
    row_fields = {f.name for f in dataclass_fields(PredictionRow)}
    predicted: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for variant in spec.variants:
        done = store.done(spec.name, variant.name)
        todo = [item for item in items if item.id not in done]
        skipped[variant.name], predicted[variant.name] = len(items) - len(todo), 0
        if on_progress:
            on_progress(variant.name, skipped[variant.name], len(items))
        if not todo:
            continue
        ray = ensure_ray(options)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        records = [{"id": i.id, "inputs": json.dumps(i.inputs, ensure_ascii=False), "gold": i.gold} for i in todo]
        dataset = ray.data.from_items(records).map_batches(
            VariantActor,
            fn_constructor_kwargs={
                "spec": spec.model_dump(mode="json"),
                "variant": variant.name,
                "data_dir": str(data_dir) if data_dir else None,
            },
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=options.actors),
            num_cpus=options.cpus_per_actor,
            num_gpus=options.gpus_per_actor,
        )
        for row in dataset.iter_rows():
            data = json.loads(row["row"])
            store.add(spec.name, PredictionRow(**{k: v for k, v in data.items() if k in row_fields}))
            predicted[variant.name] += 1
            if on_progress:
                on_progress(variant.name, skipped[variant.name] + predicted[variant.name], len(items))
    return RunSummary(spec.name, resumed, predicted, skipped, time.perf_counter() - start)

"""The trained multi-task evidence model as a predictor: stance, relevance and claim-detection heads.

Loads an artifact written by :mod:`claimflow.finetune.multitask` (``provenance.json`` of kind
``multitask_encoder``, the encoder or its LoRA adapter, the heads). One loaded model serves every
stage that uses it: the stance stage reads the stance and relevance heads from one encoder pass
per batch; the check-worthiness stage reads the claim head. :meth:`MultitaskEncoder.head` gives a
:class:`TaskHead`, the ``predict(inputs) -> list[LabelScores]`` shape every classify node calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claimflow.errors import BackendUnavailableError, ModelError
from claimflow.llm.base import BackendStats
from claimflow.models.store import ResolvedModel
from claimflow.predictors.encoder import LoadedEncoder, quiet_transformers
from claimflow.torch_scope import torch_threads
from claimflow.types import LabelScores, ModelProvenance

if TYPE_CHECKING:
    from claimflow.predictors.onnx_runtime import OnnxGraph

PAIR_TASKS = ("stance", "relevance")
"""Tasks whose input is (claim, sentence); the others read one sentence (``claim``)."""
RELEVANT = "relevant"


def load_multitask_model(artifact: Path, base_location: str, provenance: Mapping[str, Any]) -> Any:
    """The :class:`~claimflow.predictors.multitask_model.MultiTaskModel` of an artifact, in eval mode."""
    from transformers import AutoModel

    from claimflow.predictors.multitask_model import ENCODER_DELTA, MultiTaskModel

    compact = provenance["mode"] == "full" and (artifact / ENCODER_DELTA).exists()
    with quiet_transformers():
        if provenance["mode"] == "lora":
            from peft import PeftModel

            backbone = PeftModel.from_pretrained(AutoModel.from_pretrained(base_location), str(artifact))
        elif compact:
            backbone = AutoModel.from_pretrained(base_location)
        else:
            backbone = AutoModel.from_pretrained(str(artifact))
    model = MultiTaskModel(backbone, provenance["labels"], pooling=provenance.get("pooling", "mean"))
    if compact:
        try:
            model.load_delta(artifact)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{artifact}: cannot apply the fine-tuned encoder weights: {exc}") from exc
    model.load_heads(artifact)
    return model.eval()


class MultitaskEncoder(LoadedEncoder):
    """A loaded multi-task artifact; batches of ``batch_size`` items per encoder pass."""

    KIND = "multitask_encoder"
    DESCRIPTION = "a multi-task encoder"
    ENGINE = "multitask"
    NEEDS_TORCH = "the multi-task encoder needs"
    BATCH_SIZE = 32

    prefetched: dict[tuple[str, str | None], dict[str, list[float]]]

    def _read_provenance(self) -> None:
        self.labels: dict[str, tuple[str, ...]] = {t: tuple(n) for t, n in self.provenance_data["labels"].items()}
        self.max_length = int(self.provenance_data["max_length"])

    def _load_torch(self, base: ResolvedModel) -> Any:
        return load_multitask_model(self.artifact, base.location, self.provenance_data)

    def _export(self, path: Path, base: ResolvedModel) -> None:
        try:
            from transformers import AutoTokenizer

            from claimflow.predictors.multitask_model import encode_items
            from claimflow.predictors.onnx_export import export_multitask
        except ImportError as exc:
            raise BackendUnavailableError(
                "exporting the multi-task encoder to ONNX needs torch and transformers: pip install 'claimflow[local]'"
            ) from exc
        model = self._load_torch(base)
        example = encode_items(
            AutoTokenizer.from_pretrained(base.location), [("a claim", "a sentence"), ("b", None)], 16
        )
        export_multitask(model, list(self.labels), example, path)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.labels)

    def _forward(self, tasks: Sequence[str], items: Sequence[tuple[str, str | None]]) -> dict[str, list[list[float]]]:
        if self.graph is not None:
            return self._forward_onnx(self.graph, tasks, items)
        import torch

        from claimflow.predictors.multitask_model import encode_items

        out: dict[str, list[list[float]]] = {t: [] for t in tasks}
        with torch_threads(self.threads), torch.inference_mode():
            for start in range(0, len(items), self.batch_size):
                chunk = items[start : start + self.batch_size]
                encoded = encode_items(self.tokenizer, chunk, self.max_length)
                for task, logits in self.model.all_heads(encoded, tasks).items():
                    out[task] += torch.softmax(logits.float(), dim=-1).tolist()
                self.stats.forward_passes += 1
                self.stats.prompt_tokens += int(encoded["attention_mask"].sum())
        return out

    def _forward_onnx(
        self, graph: OnnxGraph, tasks: Sequence[str], items: Sequence[tuple[str, str | None]]
    ) -> dict[str, list[list[float]]]:
        from claimflow.predictors.onnx_runtime import softmax

        out: dict[str, list[list[float]]] = {t: [] for t in tasks}
        for start in range(0, len(items), self.batch_size):
            encoded = self.tokenizer.batch(items[start : start + self.batch_size], self.max_length)
            logits = graph.run(encoded)
            for task in tasks:
                out[task] += softmax(logits[task])
            self.stats.forward_passes += 1
            self.stats.prompt_tokens += int(encoded["attention_mask"].sum())
        return out

    def probabilities(
        self, tasks: Sequence[str], items: Sequence[tuple[str, str | None]]
    ) -> dict[str, list[list[float]]]:
        """P(label) of every item under each head in ``tasks``, one encoder pass per batch; items
        scored ahead by :meth:`prefetch` are read from the cache."""
        missing_heads = [t for t in tasks if t not in self.labels]
        if missing_heads:
            raise ModelError(f"{self.artifact}: no head for {missing_heads}; it has {list(self.labels)}")
        cached = [self.prefetched.get(item) for item in items]
        todo = [i for i, row in enumerate(cached) if row is None or any(t not in row for t in tasks)]
        fresh = self._forward(tasks, [items[i] for i in todo])
        for n, i in enumerate(todo):
            cached[i] = {t: fresh[t][n] for t in tasks}
        self.stats.calls += len(items)
        return {t: [row[t] for row in cached if row is not None] for t in tasks}

    def item_tasks(self, item: tuple[str, str | None]) -> tuple[str, ...]:
        """The heads that read ``item``: the pair tasks for (claim, sentence), the others for a claim alone."""
        pair = item[1] is not None
        return tuple(t for t in self.labels if (t in PAIR_TASKS) == pair)

    def prefetch(self, items: Sequence[tuple[str, str | None]]) -> None:
        """Score ``items`` now under every head that reads them, in batches of similar length, for later
        calls (the cross-claim batching of :meth:`claimflow.verifier.Verifier.verify_many`); the passes
        are counted here, the calls when the cached scores are read."""
        todo = list(dict.fromkeys(item for item in items if item not in self.prefetched))
        for pair in (False, True):
            group = sorted((i for i in todo if (i[1] is not None) == pair), key=lambda i: len(i[0]) + len(i[1] or ""))
            if not group:
                continue
            tasks = self.item_tasks(group[0])
            fresh = self._forward(tasks, group)
            for n, item in enumerate(group):
                self.prefetched[item] = {t: fresh[t][n] for t in tasks}

    def scores(self, task: str, probabilities: Sequence[Sequence[float]]) -> list[LabelScores]:
        labels = self.labels[task]
        results = []
        for probs in probabilities:
            distribution = dict(zip(labels, probs, strict=True))
            results.append(
                LabelScores(label=max(distribution, key=distribution.__getitem__), probabilities=distribution)
            )
        return results

    def stance_and_relevance(
        self, claim: str, sentences: Sequence[str]
    ) -> tuple[list[LabelScores], list[float] | None]:
        """Stance of each sentence towards ``claim`` and its P(relevant) (``None`` without a relevance
        head), from one encoder pass per batch."""
        tasks = [t for t in PAIR_TASKS if t in self.labels]
        if "stance" not in tasks:
            raise ModelError(f"{self.artifact}: no stance head; it has {list(self.labels)}")
        probs = self.probabilities(tasks, [(claim, s) for s in sentences])
        relevance = None
        if "relevance" in probs:
            column = self.labels["relevance"].index(RELEVANT)
            relevance = [row[column] for row in probs["relevance"]]
        return self.scores("stance", probs["stance"]), relevance

    def head(self, task: str) -> TaskHead:
        if task not in self.labels:
            raise ModelError(f"{self.artifact}: no {task} head; it has {list(self.labels)}")
        return TaskHead(self, task)


class TaskHead:
    """One head of a :class:`MultitaskEncoder`, with the ``predict`` of a classify stage."""

    def __init__(self, encoder: MultitaskEncoder, task: str) -> None:
        self.encoder = encoder
        self.task = task
        self.labels = encoder.labels[task]
        self.stats: BackendStats = encoder.stats  # shared: the heads count the one model's passes

    @property
    def inputs(self) -> tuple[str, ...]:
        return ("claim", "sentence") if self.task in PAIR_TASKS else ("claim",)

    def _items(self, inputs: Sequence[Mapping[str, Any]]) -> list[tuple[str, str | None]]:
        if self.task in PAIR_TASKS:
            return [(str(v["claim"]), str(v["sentence"])) for v in inputs]
        return [(str(v["claim"]), None) for v in inputs]

    def predict(self, inputs: Sequence[Mapping[str, Any]], ids: Sequence[str] | None = None) -> list[LabelScores]:
        probs = self.encoder.probabilities([self.task], self._items(inputs))[self.task]
        return self.encoder.scores(self.task, probs)

    def prefetch(self, inputs: Sequence[Mapping[str, Any]]) -> None:
        """Score ``inputs`` ahead under every head that reads them (see :meth:`MultitaskEncoder.prefetch`)."""
        self.encoder.prefetch(self._items(inputs))

    def clear_prefetched(self) -> None:
        self.encoder.clear_prefetched()

    def close(self) -> None:
        self.encoder.close()

    def provenance(self) -> ModelProvenance:
        return self.encoder.provenance()

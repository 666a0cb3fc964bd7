"""Encoder classifier ("ELM"): a fine-tuned encoder (full or LoRA) over the claim and its justifications.

:class:`FieldEncoder` builds the model input at training and at inference alike: the first field is
segment A (the claim), the others are segment B joined by the tokenizer's separator
(``[CLS] claim [SEP] support [SEP] refute [SEP]`` for BERT), each with token type ids from the
tokenizer's own pair handling. The length budget ``max_length`` is split between the fields by
water-filling: a short field leaves its unused share to the longer ones.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from claimflow.errors import BackendUnavailableError, ModelError
from claimflow.llm.base import BackendStats
from claimflow.models.store import ModelStore, ResolvedModel
from claimflow.torch_scope import torch_threads
from claimflow.types import LabelScores, ModelProvenance

if TYPE_CHECKING:
    from claimflow.predictors.onnx_runtime import OnnxGraph, Quantize, Runtime

FIELDS = ("claim", "evidence", "support_justification", "refute_justification", "stance_summary")
"""What an encoder may read; ``stance_summary`` is :func:`claimflow.predictors.stance_summary.describe_stances`."""


@runtime_checkable
class Prefetcher(Protocol):
    """A predictor that can score many inputs ahead in batched passes (cross-claim batching): later
    ``predict`` calls on those inputs read the cached scores until :meth:`clear_prefetched`."""

    def prefetch(self, inputs: Sequence[Mapping[str, Any]]) -> None: ...

    def clear_prefetched(self) -> None: ...


def water_fill(lengths: Sequence[int], budget: int) -> list[int]:
    """Token counts kept per field: an equal share each, what a short field leaves going to the others."""
    kept = [0] * len(lengths)
    open_fields = [i for i, n in enumerate(lengths) if n > 0]
    remaining = max(budget, 0)
    while open_fields and remaining > 0:
        share = max(remaining // len(open_fields), 1)
        for i in list(open_fields):
            take = min(share, lengths[i] - kept[i], remaining)
            kept[i] += take
            remaining -= take
            if kept[i] >= lengths[i]:
                open_fields.remove(i)
            if remaining == 0:
                break
    return kept


def field_text(values: Mapping[str, Any], name: str) -> str:
    value = values.get(name, "")
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return "" if value is None else str(value)


class FieldEncoder:
    """Tokenizes ``fields`` of each input into one (pair) sequence of at most ``max_length`` tokens."""

    def __init__(self, tokenizer: Any, fields: Sequence[str], max_length: int) -> None:
        unknown = set(fields) - set(FIELDS)
        if not fields or unknown:
            raise ModelError(f"encoder inputs must be a non-empty list drawn from {FIELDS}, not {list(fields)}")
        self.tokenizer = tokenizer
        self.fields = tuple(fields)
        self.max_length = max_length
        pair = len(self.fields) > 1
        extra_separators = max(len(self.fields) - 2, 0)
        self.budget = max_length - tokenizer.num_special_tokens_to_add(pair=pair) - extra_separators
        if self.budget < len(self.fields):
            raise ModelError(f"max_length {max_length} leaves no room for the fields {list(self.fields)}")
        self.separator = f" {tokenizer.sep_token} " if tokenizer.sep_token else " | "

    def texts(self, values: Mapping[str, Any]) -> tuple[str, str | None]:
        ids = [self.tokenizer(field_text(values, f), add_special_tokens=False)["input_ids"] for f in self.fields]
        kept = water_fill([len(i) for i in ids], self.budget)
        parts = [
            str(self.tokenizer.decode(i[:n])) if len(i) > n else field_text(values, f)
            for i, n, f in zip(ids, kept, self.fields, strict=True)
        ]
        if len(parts) == 1:
            return parts[0], None
        return parts[0], self.separator.join(parts[1:])

    def batch(self, inputs: Sequence[Mapping[str, Any]]) -> Any:
        pairs = [self.texts(values) for values in inputs]
        first = [a for a, _ in pairs]
        second = [b for _, b in pairs] if len(self.fields) > 1 else None
        return self.tokenizer(
            first,
            second,
            padding=True,
            truncation="longest_first",
            max_length=self.max_length,
            return_tensors="pt",
        )


def weights_sha256(folder: str | Path) -> str | None:
    """sha256 of an HF checkpoint's ``model.safetensors`` (None when there is no such file)."""
    path = Path(folder) / "model.safetensors"
    return _file_sha256(path) if path.exists() else None


def base_model_record(base: ResolvedModel) -> dict[str, Any]:
    """The ``base_model`` entry of a trained artifact's provenance (name, source, hashes)."""
    return {
        "name": base.name,
        "source": base.source,
        "sha256": base.sha256,
        "weights_sha256": weights_sha256(base.location),
    }


def read_artifact_provenance(artifact: Path, kind: str, what: str) -> dict[str, Any]:
    """A trained artifact's ``provenance.json``; a clear :class:`ModelError` when it cannot be read or
    is not of ``kind`` (``what`` names the kind in the message: "an encoder-classifier")."""
    path = artifact / "provenance.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{artifact} is not {what} artifact: cannot read {path}: {exc}") from exc
    if data.get("kind") != kind:
        raise ModelError(f"{artifact}: provenance kind is {data.get('kind')!r}, not {kind}")
    return data


def resolve_base(artifact: Path, provenance: Mapping[str, Any], store: ModelStore | None) -> ResolvedModel:
    """The base model an artifact was trained on; a LoRA artifact (or a compact full fine-tune, stored as
    the trained tensors over the base) must find the very weights it was trained on."""
    base = (store or ModelStore()).resolve(provenance["base_model"]["name"])
    pinned = provenance["base_model"].get("weights_sha256")
    on_base = provenance["mode"] == "lora" or (artifact / ENCODER_DELTA).exists()
    if on_base and pinned and pinned != weights_sha256(base.location):
        raise ModelError(
            f"{artifact} was trained on {base.name} weights sha256 {pinned}, but {base.location} holds others"
        )
    return base


ENCODER_DELTA = "encoder-delta.safetensors"
"""A compact full fine-tune's trained encoder tensors (fp16) over its pinned base (the multi-task model's)."""


def _file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encoder_init_record(artifact: Path) -> dict[str, Any]:
    """The ``init_from`` entry of a classifier trained from a multi-task artifact's fine-tuned encoder:
    its folder name (found among the shipped artifacts at load time), path, and the delta's sha256."""
    delta = artifact / ENCODER_DELTA
    if not delta.exists():
        raise ModelError(f"init_from {artifact}: no {ENCODER_DELTA} (a compact full fine-tune) to start from")
    provenance = read_artifact_provenance(artifact, "multitask_encoder", "a multi-task encoder")
    return {
        "artifact": artifact.name,
        "path": str(artifact),
        "delta_sha256": _file_sha256(delta),
        "base_weights_sha256": provenance["base_model"].get("weights_sha256"),
    }


def _init_artifact(record: Mapping[str, Any]) -> Path:
    from importlib import resources

    for candidate in (Path(str(record.get("path", ""))), Path(str(resources.files("claimflow") / "artifacts"))):
        folder = candidate if candidate.name == record["artifact"] else candidate / str(record["artifact"])
        delta = folder / ENCODER_DELTA
        if delta.exists() and _file_sha256(delta) == record["delta_sha256"]:
            return folder
    raise ModelError(
        f"the encoder this classifier was trained from ({record['artifact']}, {ENCODER_DELTA} sha256 "
        f"{record['delta_sha256']}) is neither at {record.get('path')} nor among the shipped artifacts"
    )


def apply_encoder_init(model: Any, record: Mapping[str, Any], base: ResolvedModel) -> None:
    """Overlay the fine-tuned encoder of ``record`` (see :func:`encoder_init_record`) on ``model``'s encoder,
    which must hold the very base weights that encoder was trained on."""
    pinned = record.get("base_weights_sha256")
    if pinned and pinned != weights_sha256(base.location):
        raise ModelError(f"{record['artifact']} was trained on base weights sha256 {pinned}, not {base.location}'s")
    folder = _init_artifact(record)
    try:
        overlay_delta(model.base_model, folder / ENCODER_DELTA)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot start from {folder}: {exc}") from exc


def overlay_delta(module: Any, path: Path) -> None:
    """Copy the tensors of a delta file (:data:`ENCODER_DELTA`) over ``module``'s parameters of the same
    names; a name or shape the module lacks is a ValueError naming it."""
    import torch
    from safetensors.torch import load_file

    delta = load_file(str(path))
    own = dict(module.named_parameters())
    unknown = sorted(set(delta) - set(own))
    if unknown:
        raise ValueError(f"{path}: tensors the base model lacks: {unknown[:5]}")
    with torch.no_grad():
        for name, tensor in delta.items():
            if own[name].shape != tensor.shape:
                raise ValueError(f"{path}: {name} is {tuple(tensor.shape)}, the base has {tuple(own[name].shape)}")
            own[name].copy_(tensor.to(own[name].dtype))


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' load-time chatter (verbosity, weight-loading progress bars, deprecation
    warnings) while loading a model: library output stays the caller's."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_encoder_model(folder: Path, labels: Sequence[str]) -> Any:
    """The encoder with a classification head (load it under :func:`quiet_transformers` to hide the
    "head newly initialized" report when the head's weights come next)."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        str(folder),
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )


def _load_torch_classifier(
    artifact: Path, provenance: Mapping[str, Any], base: ResolvedModel, labels: Sequence[str]
) -> Any:
    """The torch model of an encoder-classifier artifact (a LoRA one merged into its base where it can be)."""
    if provenance["mode"] != "lora":
        with quiet_transformers():
            return load_encoder_model(artifact, labels)
    from claimflow.predictors.lora_merge import merge_lora_adapter, mergeable

    with quiet_transformers():
        base_model = load_encoder_model(Path(base.location), labels)
        if "init_from" in provenance:
            apply_encoder_init(base_model, provenance["init_from"], base)
        if mergeable(artifact):  # merged into the weights: PEFT is not imported (~2 s of start-up)
            try:
                merge_lora_adapter(base_model, artifact)
            except ValueError as exc:
                raise ModelError(f"cannot apply the LoRA adapter of {artifact}: {exc}") from exc
            return base_model
        from peft import PeftModel

        return PeftModel.from_pretrained(base_model, str(artifact))


class LoadedEncoder:
    """What the trained-encoder predictors share: the artifact's provenance and base model, the
    counters, the prefetch cache and the runtime: an ONNX graph (``runtime: onnx``, exported once, see
    :mod:`claimflow.predictors.onnx_runtime`; ``quantize`` applies there) or a torch model (int8 is then
    :func:`claimflow.predictors.trained.quantize_int8`'s job). Subclasses name their artifact kind and
    say how to read the provenance, load the torch model and export it."""

    KIND: ClassVar[str]
    DESCRIPTION: ClassVar[str]
    """How errors name the artifact (``an encoder-classifier``)."""
    ENGINE: ClassVar[str]
    """The middle word of :meth:`provenance`'s backend (``encoder``)."""
    NEEDS_TORCH: ClassVar[str]
    """The start of the error when torch / transformers are missing."""
    BATCH_SIZE: ClassVar[int]
    """Items per encoder pass unless ``batch_size`` says otherwise."""

    prefetched: dict[Any, Any]

    def __init__(
        self,
        artifact: str | Path,
        *,
        store: ModelStore | None = None,
        batch_size: int | None = None,
        threads: int | None = None,
        runtime: Runtime = "torch",
        quantize: Quantize = "none",
    ) -> None:
        artifact = Path(artifact)
        self.provenance_data = read_artifact_provenance(artifact, self.KIND, self.DESCRIPTION)
        self.threads = threads  # set around this model's forward passes only (torch_scope)
        base = resolve_base(artifact, self.provenance_data, store)
        self.batch_size = batch_size or self.BATCH_SIZE
        self.artifact = artifact
        self.base_name = base.name
        self.stats = BackendStats()
        self.prefetched = {}
        self.quantization: str | None = None  # "int8" after predictors.trained.quantize_int8 / an int8 graph
        self.graph: OnnxGraph | None = None
        self.model: Any = None
        self.tokenizer: Any = None
        self._read_provenance()
        if runtime == "onnx":
            from claimflow.predictors.onnx_runtime import onnx_parts

            self.tokenizer, self.graph = onnx_parts(
                artifact, self.provenance_data, base.location, quantize=quantize, store=store,
                export=lambda path: self._export(path, base), threads=threads,
            )  # fmt: skip
            self.quantization = None if quantize == "none" else quantize
        else:
            try:
                import torch  # noqa: F401  (availability: the error below names the extra)
                from transformers import AutoTokenizer
            except ImportError as exc:
                raise BackendUnavailableError(
                    f"{self.NEEDS_TORCH} torch and transformers: pip install 'claimflow[local]'"
                ) from exc
            self.tokenizer = AutoTokenizer.from_pretrained(base.location)
            self.model = self._load_torch(base)
        self._loaded()

    def _read_provenance(self) -> None:
        """Read what the subclass needs from ``self.provenance_data`` (before any model loads)."""

    def _loaded(self) -> None:
        """Finish set-up once the tokenizer and the model (or graph) are loaded."""

    def _load_torch(self, base: ResolvedModel) -> Any:
        """The artifact's torch model, in eval mode."""
        raise NotImplementedError

    def _export(self, path: Path, base: ResolvedModel) -> None:
        """Export the artifact's torch model to ONNX at ``path`` (needs torch)."""
        raise NotImplementedError

    def clear_prefetched(self) -> None:
        self.prefetched.clear()

    def close(self) -> None:
        """Nothing to release beyond what garbage collection frees."""

    def provenance(self) -> ModelProvenance:
        suffix = f"-{self.quantization}" if self.quantization else ""
        engine = "onnxruntime" if self.graph is not None else "transformers"
        return ModelProvenance(
            backend=f"{engine}-{self.ENGINE}-{self.provenance_data['mode']}{suffix}",
            model=f"{self.base_name}+{self.artifact.name}",
            source=str(self.artifact),
        )


class EncoderClassifier(LoadedEncoder):
    """Loads an artifact written by :mod:`claimflow.finetune.classifier` (``provenance.json`` + weights)."""

    KIND = "encoder_classifier"
    DESCRIPTION = "an encoder-classifier"
    ENGINE = "encoder"
    NEEDS_TORCH = "encoder classifiers need"
    BATCH_SIZE = 16

    prefetched: dict[tuple[str, ...], list[float]]

    def _loaded(self) -> None:
        self.encoder = FieldEncoder(self.tokenizer, self.provenance_data["inputs"], self.provenance_data["max_length"])

    def _read_provenance(self) -> None:
        self.labels: tuple[str, ...] = tuple(self.provenance_data["labels"])

    def _load_torch(self, base: ResolvedModel) -> Any:
        return _load_torch_classifier(self.artifact, self.provenance_data, base, self.labels).eval()

    def _export(self, path: Path, base: ResolvedModel) -> None:
        try:
            from transformers import AutoTokenizer

            from claimflow.predictors.onnx_export import export_classifier
        except ImportError as exc:
            raise BackendUnavailableError(
                "exporting an encoder classifier to ONNX needs torch and transformers: pip install 'claimflow[local]'"
            ) from exc
        model = self._load_torch(base)
        encoder = FieldEncoder(
            AutoTokenizer.from_pretrained(base.location),
            self.provenance_data["inputs"],
            self.provenance_data["max_length"],
        )
        example = encoder.batch([{f: "a claim" for f in encoder.fields}, {f: "b" for f in encoder.fields}])
        export_classifier(model, dict(example), path)

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.encoder.fields

    def _key(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(field_text(values, f) for f in self.encoder.fields)

    def _forward(self, inputs: Sequence[Mapping[str, Any]]) -> list[list[float]]:
        if self.graph is not None:
            return self._forward_onnx(self.graph, inputs)
        import torch

        out: list[list[float]] = []
        with torch_threads(self.threads), torch.inference_mode():
            for start in range(0, len(inputs), self.batch_size):
                chunk = inputs[start : start + self.batch_size]
                encoded = self.encoder.batch(chunk)
                logits = self.model(**encoded).logits
                out += torch.softmax(logits.float(), dim=-1).tolist()
                self.stats.forward_passes += 1
                self.stats.prompt_tokens += int(encoded["attention_mask"].sum())
        return out

    def _forward_onnx(self, graph: OnnxGraph, inputs: Sequence[Mapping[str, Any]]) -> list[list[float]]:
        from claimflow.predictors.onnx_runtime import softmax

        out: list[list[float]] = []
        for start in range(0, len(inputs), self.batch_size):
            encoded = self.encoder.batch(inputs[start : start + self.batch_size])
            out += softmax(graph.run(encoded)["logits"])
            self.stats.forward_passes += 1
            self.stats.prompt_tokens += int(encoded["attention_mask"].sum())
        return out

    def probabilities(self, inputs: Sequence[Mapping[str, Any]]) -> list[list[float]]:
        """P(label) of each input; prefetched inputs (:meth:`prefetch`) are read from the cache."""
        keys = [self._key(v) for v in inputs]
        missing = [i for i, k in enumerate(keys) if k not in self.prefetched]
        computed = dict(zip(missing, self._forward([inputs[i] for i in missing]), strict=True))
        self.stats.calls += len(inputs)
        return [computed[i] if i in computed else self.prefetched[k] for i, k in enumerate(keys)]

    def prefetch(self, inputs: Sequence[Mapping[str, Any]]) -> None:
        """Score ``inputs`` now, in batches of similar length, for later :meth:`predict` calls (the
        cross-claim batching of :meth:`claimflow.verifier.Verifier.verify_many`); the passes are counted
        here, the calls when the cached scores are read."""
        todo = {self._key(v): v for v in inputs if self._key(v) not in self.prefetched}
        ordered = sorted(todo, key=lambda k: sum(len(t) for t in k))
        for key, probs in zip(ordered, self._forward([todo[k] for k in ordered]), strict=True):
            self.prefetched[key] = probs

    def predict(self, inputs: Sequence[Mapping[str, Any]], ids: Sequence[str] | None = None) -> list[LabelScores]:
        results = []
        for probs in self.probabilities(inputs):
            distribution = dict(zip(self.labels, probs, strict=True))
            results.append(
                LabelScores(label=max(distribution, key=distribution.__getitem__), probabilities=distribution)
            )
        return results

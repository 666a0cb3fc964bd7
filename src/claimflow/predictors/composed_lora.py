"""LoRA composition on a causal LM (the LoraMap paper): LoraHub, LoraConcat and LoraMap over source LoRAs.

Every composition replaces each linear layer the source LoRAs adapt with a :class:`ComposedLoraLinear`
holding the sources' matrices (each source's ``lora_B`` already multiplied by its scaling):

- ``lorahub``: ``ΔW = (Σ_t w_t B_t)(Σ_t w_t A_t)``, the coefficients ``w`` (one per source and layer)
  found without gradients; the matrices are frozen.
- ``loraconcat``: ``ΔW = B_cat A_cat`` with ``A_cat`` the sources' ``A_t`` stacked along the rank
  (``3r x d_in`` for three sources) and ``B_cat`` theirs side by side; both fine-tuned.
- ``loramap``: ``ΔW = B_cat B_map A_map A_cat`` with ``A_cat`` / ``B_cat`` frozen and only the maps
  trained: ``A_map`` (``m x 3r``, Kaiming-uniform) and ``B_map`` (``3r x m``, zeros, so training starts
  from the base model as a fresh LoRA does).

(PEFT's convention: ``lora_A`` is ``r x d_in``, ``lora_B`` is ``d_out x r``; the paper writes the
transposes.) An artifact is self-contained: ``composed.safetensors`` holds the matrices the method
needs and what was learnt, ``provenance.json`` the base model's hashes (a mismatched base is refused at
load), the sources' sha256 and the method's settings. This module imports torch: import it lazily.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from claimflow.errors import ModelError
from claimflow.predictors.encoder import _file_sha256

__all__ = [
    "COMPOSED_FILE",
    "METHODS",
    "ComposedLoraClassifier",
    "ComposedLoraLinear",
    "Method",
    "SourceLora",
    "compose_model",
    "composed_layers",
    "layer_index",
    "load_composed_tensors",
    "read_source",
    "save_composed_tensors",
    "trainable_count",
]

Method = Literal["lorahub", "loraconcat", "loramap"]
METHODS: tuple[Method, ...] = ("lorahub", "loraconcat", "loramap")
COMPOSED_FILE = "composed.safetensors"

_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<which>[AB])(?:\.[^.]+)?\.weight$")


@dataclass(frozen=True)
class SourceLora:
    """One source LoRA adapter (a PEFT folder): per adapted module, ``A`` (r x d_in) and ``scaling * B``."""

    path: Path
    sha256: str
    rank: int
    scaling: float
    a: Mapping[str, torch.Tensor]
    b: Mapping[str, torch.Tensor]

    def record(self) -> dict[str, Any]:
        """What a composed artifact's provenance keeps of its source (enough to rebuild the shapes)."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "rank": self.rank,
            "scaling": self.scaling,
            "modules": sorted(self.a),
        }


def read_source(path: Path) -> SourceLora:
    """A PEFT LoRA folder (``adapter_config.json`` + ``adapter_model.safetensors``) -> :class:`SourceLora`."""
    from safetensors.torch import load_file

    config_path, weights = path / "adapter_config.json", path / "adapter_model.safetensors"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is not a LoRA adapter folder: cannot read {config_path}: {exc}") from exc
    if str(config.get("peft_type", "")).upper() != "LORA":
        raise ModelError(f"{path}: adapter type {config.get('peft_type')!r}, not LORA")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise ModelError(f"{path}: per-module ranks or alphas are not supported in a composition")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    scaling = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
    try:
        tensors = load_file(str(weights))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read {weights}: {exc}") from exc
    a: dict[str, torch.Tensor] = {}
    b: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        match = _KEY.match(key)
        if match is None:
            continue  # a saved head or embedding: not part of the LoRA deltas
        target = a if match["which"] == "A" else b
        target[match["module"]] = value.float() if match["which"] == "A" else value.float() * scaling
    if not a or set(a) != set(b):
        raise ModelError(f"{path}: no matching lora_A / lora_B pairs in {weights.name}")
    return SourceLora(path, _file_sha256(weights), rank, scaling, a, b)


def layer_index(module: str) -> int:
    """The transformer block a module name lies in (``model.layers.7.self_attn.q_proj`` -> 7); -1 if none."""
    match = re.search(r"\.(?:layers|h|blocks|block)\.(\d+)\.", f".{module}.")
    return int(match.group(1)) if match else -1


class ComposedLoraLinear(nn.Module):
    """A frozen linear layer plus the composed LoRA delta of one method (see the module docstring)."""

    def __init__(
        self,
        base: nn.Linear,
        a: Sequence[torch.Tensor],
        b: Sequence[torch.Tensor],
        method: Method,
        map_dim: int = 16,
    ) -> None:
        super().__init__()
        self.base, self.method = base, method
        for param in base.parameters():
            param.requires_grad_(False)
        if method == "lorahub":
            if len({t.shape for t in a}) != 1:
                raise ModelError("LoraHub sums the sources' matrices: they need one rank")
            self.register_buffer("a_stack", torch.stack(list(a)))  # n x r x d_in
            self.register_buffer("b_stack", torch.stack(list(b)))  # n x d_out x r
            self.coef = nn.Parameter(torch.zeros(len(a)), requires_grad=False)
            return
        a_cat, b_cat = torch.cat(list(a), dim=0), torch.cat(list(b), dim=1)
        if method == "loraconcat":
            self.a_cat, self.b_cat = nn.Parameter(a_cat.clone()), nn.Parameter(b_cat.clone())
            return
        self.register_buffer("a_cat", a_cat)
        self.register_buffer("b_cat", b_cat)
        self.a_map = nn.Parameter(torch.empty(map_dim, a_cat.shape[0]))
        nn.init.kaiming_uniform_(self.a_map, a=math.sqrt(5))
        self.b_map = nn.Parameter(torch.zeros(a_cat.shape[0], map_dim))

    def delta_weight(self) -> torch.Tensor:
        """ΔW (d_out x d_in) of the current composition (for tests and inspection)."""
        if self.method == "lorahub":
            a_hat = torch.einsum("n,nri->ri", self.coef, self.a_stack)
            b_hat = torch.einsum("n,nor->or", self.coef, self.b_stack)
            return b_hat @ a_hat
        if self.method == "loraconcat":
            return self.b_cat @ self.a_cat
        return self.b_cat @ self.b_map @ self.a_map @ self.a_cat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.method == "lorahub":
            a_hat = torch.einsum("n,nri->ri", self.coef, self.a_stack)
            b_hat = torch.einsum("n,nor->or", self.coef, self.b_stack)
            return out + (x @ a_hat.T) @ b_hat.T
        if self.method == "loraconcat":
            return out + (x @ self.a_cat.T) @ self.b_cat.T
        return out + (((x @ self.a_cat.T) @ self.a_map.T) @ self.b_map.T) @ self.b_cat.T


def compose_model(model: nn.Module, sources: Sequence[SourceLora], method: Method, map_dim: int = 16) -> None:
    """Replace every module all ``sources`` adapt with a :class:`ComposedLoraLinear` (in place); the rest
    of ``model`` is frozen. The sources must adapt the same modules, with shapes that fit ``model``."""
    if not sources:
        raise ModelError("a composition needs at least one source LoRA")
    modules = set(sources[0].a)
    for source in sources[1:]:
        if set(source.a) != modules:
            raise ModelError(f"{source.path} adapts other modules than {sources[0].path}: they cannot be composed")
    for param in model.parameters():
        param.requires_grad_(False)
    for name in sorted(modules):
        try:
            base = model.get_submodule(name)
        except AttributeError as exc:
            raise ModelError(f"the base model has no module {name} that the source LoRAs adapt") from exc
        if not isinstance(base, nn.Linear):
            raise ModelError(f"{name} is a {type(base).__name__}, not a linear layer")
        a, b = [s.a[name] for s in sources], [s.b[name] for s in sources]
        for source, a_t, b_t in zip(sources, a, b, strict=True):
            if a_t.shape[1] != base.in_features or b_t.shape[0] != base.out_features:
                raise ModelError(f"{source.path}: {name} does not fit the base model (trained on another base?)")
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, ComposedLoraLinear(base, a, b, method, map_dim))


def composed_layers(model: nn.Module) -> dict[str, ComposedLoraLinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, ComposedLoraLinear)}


def trainable_count(model: nn.Module) -> int:
    """Parameters the method learns: LoraHub's coefficients (one per source and block, shared by the
    block's modules), or the tensors with gradients."""
    layers = composed_layers(model)
    if any(m.method == "lorahub" for m in layers.values()):
        blocks = {layer_index(name) for name in layers}
        return len(blocks) * next(iter(layers.values())).coef.numel()
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_composed_tensors(model: nn.Module, path: Path) -> None:
    """Every composed layer's tensors (what the method needs at inference) into one safetensors file."""
    from safetensors.torch import save_file

    tensors = {}
    for name, layer in composed_layers(model).items():
        for key, value in list(layer.named_parameters(recurse=False)) + list(layer.named_buffers(recurse=False)):
            tensors[f"{name}.{key}"] = value.detach().contiguous().clone()
    save_file(tensors, str(path))


def load_composed_tensors(model: nn.Module, path: Path) -> None:
    """Fill a model composed with the same method and shapes from :func:`save_composed_tensors`' file."""
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    for name, layer in composed_layers(model).items():
        own = dict(layer.named_parameters(recurse=False)) | dict(layer.named_buffers(recurse=False))
        for key, value in own.items():
            stored = tensors.get(f"{name}.{key}")
            if stored is None or stored.shape != value.shape:
                raise ModelError(f"{path}: {name}.{key} is missing or has another shape")
            with torch.no_grad():
                value.copy_(stored)


def _cut_evidence(inputs: Mapping[str, Any], max_sentences: int) -> dict[str, Any]:
    values = dict(inputs)
    if isinstance(values.get("evidence"), list):
        values["evidence"] = values["evidence"][:max_sentences]
    return values


class ComposedLoraClassifier:
    """A causal LM with composed LoRAs that classifies through its template's label words.

    ``label_map`` maps the task's labels (``SUPPORTED``) to the template's (``TRUE``); predictions are
    reported in the task's labels. Built from source LoRAs (:meth:`from_sources`, for training) or
    from a saved artifact (:meth:`__init__`), which refuses a base model other than its own."""

    KIND = "composed_lora"
    artifact: Path | None

    def __init__(
        self,
        artifact: Path,
        *,
        store: Any = None,
        registry: Any = None,
        batch_size: int = 8,
        threads: int | None = None,
    ) -> None:
        from claimflow.predictors.encoder import read_artifact_provenance

        self.provenance_data = read_artifact_provenance(artifact, self.KIND, "a composed-LoRA")
        data = self.provenance_data
        self._build(
            data["base_model"]["name"],
            data["template"],
            data["label_map"],
            method=data["method"],
            map_dim=int(data["map_dim"]),
            shapes=data["sources"],
            max_input_tokens=int(data["max_input_tokens"]),
            max_evidence_sentences=int(data["max_evidence_sentences"]),
            store=store,
            registry=registry,
            threads=threads,
            pinned=data["base_model"],
        )
        load_composed_tensors(self.model, artifact / COMPOSED_FILE)
        self.model.eval()
        self.artifact, self.batch_size = artifact, batch_size

    @classmethod
    def from_sources(
        cls,
        sources: Sequence[Path],
        *,
        method: Method,
        base_model: str,
        template: str,
        label_map: Mapping[str, str],
        map_dim: int = 16,
        max_input_tokens: int = 256,
        max_evidence_sentences: int = 5,
        store: Any = None,
        registry: Any = None,
        threads: int | None = None,
        batch_size: int = 8,
    ) -> ComposedLoraClassifier:
        self = cls.__new__(cls)
        self.provenance_data = {}
        self._build(
            base_model,
            template,
            label_map,
            method=method,
            map_dim=map_dim,
            shapes=[read_source(Path(p)) for p in sources],
            max_input_tokens=max_input_tokens,
            max_evidence_sentences=max_evidence_sentences,
            store=store,
            registry=registry,
            threads=threads,
            pinned=None,
        )
        self.artifact, self.batch_size = None, batch_size
        return self

    def _build(
        self,
        base_model: str,
        template: str,
        label_map: Mapping[str, str],
        *,
        method: Method,
        map_dim: int,
        shapes: Sequence[Any],
        max_input_tokens: int,
        max_evidence_sentences: int,
        store: Any,
        registry: Any,
        threads: int | None,
        pinned: Mapping[str, Any] | None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from claimflow.llm.base import BackendStats
        from claimflow.models.convert import hf_checkpoint
        from claimflow.models.store import ModelStore
        from claimflow.predictors.encoder import base_model_record, quiet_transformers
        from claimflow.predictors.soft_prompt import SoftPromptCodec
        from claimflow.prompts.registry import TemplateRegistry

        if method not in METHODS:
            raise ModelError(f"unknown composition method {method!r}; choose from {list(METHODS)}")
        self.store = store or ModelStore()
        self.base = self.store.resolve(base_model)
        folder = hf_checkpoint(self.base, self.store)
        self.base_record = base_model_record(self.base)
        if pinned is not None and pinned.get("sha256") and pinned["sha256"] != self.base_record["sha256"]:
            raise ModelError(
                f"this composition was trained on {pinned['name']} sha256 {pinned['sha256']}, "
                f"but the store's {self.base.name} is sha256 {self.base_record['sha256']}"
            )
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        )
        self.template = (registry or TemplateRegistry()).get(template)
        self.label_map = dict(label_map)
        self.labels = tuple(self.label_map)
        self.codec = SoftPromptCodec(
            self.tokenizer, self.template, max_input_tokens, tuple(self.label_map[t] for t in self.labels)
        )
        self.method, self.map_dim, self.threads = method, map_dim, threads
        self.max_input_tokens, self.max_evidence_sentences = max_input_tokens, max_evidence_sentences
        with quiet_transformers():
            self.model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        if isinstance(shapes[0], SourceLora):
            self.sources: list[dict[str, Any]] = [s.record() for s in shapes]
            compose_model(self.model, shapes, method, map_dim)
        else:  # from an artifact: placeholders of the saved shapes, filled by load_composed_tensors
            self.sources = list(shapes)
            compose_model(self.model, [_placeholder(self.model, s) for s in shapes], method, map_dim)
        self.stats = BackendStats()
        self.model_id = f"{self.base.name}+{method}"

    # --- scoring ------------------------------------------------------------------------------------

    def encode(self, inputs: Mapping[str, Any]) -> list[int]:
        return self.codec.prompt_ids(_cut_evidence(inputs, self.max_evidence_sentences))

    def label_logits(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        """The label tokens' logits at the answer position, one row per sequence (task-label order)."""
        from claimflow.predictors.soft_prompt import batch_logits

        return batch_logits(self.model, sequences, self.pad_id, 0)[:, self.codec.label_token_ids]

    def probabilities(self, sequences: Sequence[Sequence[int]]) -> list[list[float]]:
        from claimflow.torch_scope import torch_threads

        out: list[list[float]] = []
        with torch_threads(self.threads), torch.inference_mode():
            for start in range(0, len(sequences), self.batch_size):
                chunk = sequences[start : start + self.batch_size]
                out += torch.softmax(self.label_logits(chunk).float(), dim=-1).tolist()
                self.stats.calls += len(chunk)
                self.stats.forward_passes += 1
                self.stats.prompt_tokens += sum(len(s) for s in chunk)
        return out

    def predict(self, inputs: Sequence[Mapping[str, Any]], ids: Sequence[str] | None = None) -> list[Any]:
        from claimflow.types import LabelScores

        probs = self.probabilities([self.encode(values) for values in inputs])
        results = []
        for row in probs:
            scores = dict(zip(self.labels, row, strict=True))
            results.append(LabelScores(label=max(scores, key=scores.__getitem__), probabilities=scores))
        return results

    def close(self) -> None:
        """Nothing to release beyond what garbage collection frees."""

    def provenance(self) -> Any:
        from claimflow.types import ModelProvenance

        return ModelProvenance(
            backend="transformers+lora",
            model=self.model_id,
            source=str(self.artifact) if self.artifact else None,
            sha256=self.base_record.get("sha256"),
        )


def _placeholder(model: nn.Module, record: Mapping[str, Any]) -> SourceLora:
    """A source of the recorded rank over the modules it adapted (zeros; the artifact's file fills them)."""
    rank = int(record["rank"])
    a: dict[str, torch.Tensor] = {}
    b: dict[str, torch.Tensor] = {}
    for name in record["modules"]:
        layer = model.get_submodule(name)
        if not isinstance(layer, nn.Linear):
            raise ModelError(f"the base model's {name} is not a linear layer: another base model?")
        a[name] = torch.zeros(rank, layer.in_features)
        b[name] = torch.zeros(layer.out_features, rank)
    return SourceLora(Path(record["path"]), str(record["sha256"]), rank, float(record["scaling"]), a, b)

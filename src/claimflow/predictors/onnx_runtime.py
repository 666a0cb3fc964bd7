"""ONNX Runtime for the trained encoders (``encoders: {runtime: onnx}``): no torch at inference.

The trained model (an encoder classifier, or the multi-task evidence model with all its heads) is
exported to ONNX once, by :mod:`claimflow.predictors.onnx_export` (which needs torch), into the model
store's cache (``<cache>/onnx/<key>.onnx``); the key is a sha256 over the artifact's files, its base
weights and the export format, so a retrained artifact never reuses a stale graph. ``quantize: int8``
adds ONNX Runtime's dynamic int8 quantisation of that graph. Later runs load the cached graph with
``onnxruntime`` and tokenize with ``tokenizers`` alone: neither torch nor transformers is imported.

:class:`FastTokenizer` is the slice of a Hugging Face fast tokenizer that the encoders use, over the
same ``tokenizer.json``: the same ids, type ids and truncation (``longest_first``), padded right.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from claimflow.errors import BackendUnavailableError, ModelError
from claimflow.models.store import ModelStore

__all__ = [
    "EXPORT_FORMAT",
    "FastTokenizer",
    "OnnxGraph",
    "Quantize",
    "Runtime",
    "onnx_graph",
    "onnx_parts",
    "softmax",
]

log = logging.getLogger(__name__)

Runtime = Literal["torch", "onnx"]
"""What an encoder predictor runs on; the config's ``auto`` resolves to one of them
(:func:`claimflow.predictors.trained.load_encoder`)."""
Quantize = Literal["none", "int8"]
EXPORT_FORMAT = 1
"""Bumped when the exported graph's inputs or outputs change: older cached graphs are then ignored."""


class FastTokenizer:
    """``tokenizers.Tokenizer`` from a model folder's ``tokenizer.json``, with the calls the encoders make
    of a transformers tokenizer (:class:`~claimflow.predictors.encoder.FieldEncoder`, the multi-task items)."""

    def __init__(self, folder: str | Path) -> None:
        from tokenizers import Tokenizer

        folder = Path(folder)
        try:
            self.backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises a bare Exception for a missing or bad file
            raise ModelError(f"{folder}: no readable tokenizer.json for the ONNX runtime: {exc}") from exc
        self.backend.no_padding()  # some tokenizer.json files pad to a fixed length: batches pad here
        self.backend.no_truncation()
        special: dict[str, Any] = {}
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            path = folder / name
            if path.exists():
                special.update(
                    {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if k.endswith("_token")}
                )
        self.sep_token: str | None = _token_text(special.get("sep_token"))
        pad = _token_text(special.get("pad_token"))
        pad_id = self.backend.token_to_id(pad) if pad else None
        self.pad_id = int(pad_id) if pad_id is not None else 0
        self.lock = threading.Lock()  # truncation is state of the backend tokenizer

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return int(self.backend.num_special_tokens_to_add(pair))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.backend.decode(list(ids), skip_special_tokens=False))

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str | None] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool = False,
        truncation: bool | str = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
    ) -> dict[str, Any]:
        """One text (``{"input_ids": [...], ...}`` as lists) or a batch: right-padded ``numpy`` arrays
        whatever ``padding`` and ``return_tensors`` say (accepted for the transformers call signature;
        the ONNX graph reads numpy)."""
        if isinstance(text, str):
            pair = text_pair if isinstance(text_pair, str) else None
            encoding = self._encode([(text, pair)], add_special_tokens, truncation, max_length)[0]
            return {
                "input_ids": encoding.ids,
                "token_type_ids": encoding.type_ids,
                "attention_mask": encoding.attention_mask,
            }
        pairs = list(text_pair) if text_pair is not None and not isinstance(text_pair, str) else [None] * len(text)
        return self.batch(list(zip(text, pairs, strict=True)), max_length if truncation else None)

    def batch(self, items: Sequence[tuple[str, str | None]], max_length: int | None) -> dict[str, Any]:
        """(text, pair or None) items -> right-padded ``input_ids``, ``token_type_ids``, ``attention_mask``
        (int64), each truncated to ``max_length`` tokens (``longest_first``) when it is given."""
        import numpy as np

        encodings = self._encode(items, True, max_length is not None, max_length)
        width = max((len(e.ids) for e in encodings), default=0)
        out = {
            "input_ids": np.full((len(encodings), width), self.pad_id, dtype=np.int64),
            "token_type_ids": np.zeros((len(encodings), width), dtype=np.int64),
            "attention_mask": np.zeros((len(encodings), width), dtype=np.int64),
        }
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            out["input_ids"][row, :n] = encoding.ids
            out["token_type_ids"][row, :n] = encoding.type_ids
            out["attention_mask"][row, :n] = 1
        return out

    def _encode(
        self, items: Sequence[tuple[str, str | None]], special: bool, truncation: bool | str, max_length: int | None
    ) -> list[Any]:
        inputs = [a if b is None else (a, b) for a, b in items]
        with self.lock:
            if truncation and max_length is not None:
                self.backend.enable_truncation(max_length, strategy="longest_first")
            else:
                self.backend.no_truncation()
            try:
                return list(self.backend.encode_batch(inputs, add_special_tokens=special))
            finally:
                self.backend.no_truncation()


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):  # {"content": "[SEP]", ...} in some tokenizer configs
        value = value.get("content")
    return str(value) if value else None


def softmax(logits: Any) -> list[list[float]]:
    """Row-wise softmax of a 2-d array, as lists (what the torch path returns)."""
    import numpy as np

    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    rows: list[list[float]] = (z / z.sum(axis=-1, keepdims=True)).tolist()
    return rows


class OnnxGraph:
    """An ONNX Runtime session on CPU over an exported encoder graph."""

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError(
                "encoders.runtime: onnx needs onnxruntime: pip install 'claimflow[onnx]'"
            ) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default (the physical cores)
        options.log_severity_level = 3  # errors only: library output stays the caller's
        # no busy-waiting between runs: llama.cpp's decoding in the same process needs those cores next
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph kinds
            raise ModelError(f"onnxruntime cannot load {path}: {exc}") from exc
        self.path = path
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feed: Mapping[str, Any]) -> dict[str, Any]:
        """Outputs by name for the named inputs (extra entries of ``feed`` are ignored)."""
        outputs = self.session.run(self.output_names, {name: feed[name] for name in self.input_names})
        return dict(zip(self.output_names, outputs, strict=True))


def _artifact_key(artifact: Path, base_weights: str | None, quantize: Quantize) -> str:
    digest = hashlib.sha256(json.dumps({"format": EXPORT_FORMAT, "base": base_weights, "quantize": quantize}).encode())
    for path in sorted(p for p in artifact.iterdir() if p.is_file()):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def onnx_graph(
    artifact: Path,
    *,
    base_weights: str | None,
    quantize: Quantize,
    store: ModelStore | None,
    export: Callable[[Path], None],
    threads: int | None = None,
) -> OnnxGraph:
    """The ONNX graph of ``artifact`` from the cache, exported by ``export(path)`` (a torch export of the
    loaded model) and quantised on first use; written under a temporary name and renamed when complete,
    so an interrupted export is redone, never half-read."""
    folder = (store or ModelStore()).cache_dir / "onnx"
    key = _artifact_key(artifact, base_weights, "none")
    fp32 = folder / f"{artifact.name}-{key[:16]}.onnx"
    if not fp32.exists():
        partial = _partial(fp32)
        log.info("exporting %s to ONNX in %s (once)", artifact, fp32)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _drop_stale_partials(fp32)
            export(partial)
            partial.replace(fp32)  # atomic: a concurrent export of the same graph writes the same bytes
        except OSError as exc:
            raise ModelError(f"cannot write the ONNX graph of {artifact.name} to {folder}: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
    path = fp32
    if quantize == "int8":
        path = fp32.with_name(fp32.stem + "-int8.onnx")
        if not path.exists():
            _quantize_int8(fp32, path)
    return OnnxGraph(path, threads=threads)


def onnx_parts(
    artifact: Path,
    provenance: Mapping[str, Any],
    base_location: str | Path,
    *,
    quantize: Quantize,
    store: ModelStore | None,
    export: Callable[[Path], None],
    threads: int | None = None,
) -> tuple[FastTokenizer, OnnxGraph]:
    """What an encoder predictor runs on with ``runtime: onnx``: the base model's tokenizer and the
    artifact's graph (:func:`onnx_graph`; the base weights pinned in the artifact's ``provenance``)."""
    graph = onnx_graph(
        artifact,
        base_weights=provenance["base_model"].get("weights_sha256"),
        quantize=quantize,
        store=store,
        export=export,
        threads=threads,
    )
    return FastTokenizer(base_location), graph


def _quantize_int8(source: Path, target: Path) -> None:
    """ONNX Runtime's dynamic quantisation (after its recommended pre-processing): int8 weights of the
    MatMul/Gemm nodes, activations quantised at run time."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise BackendUnavailableError(
            "int8 ONNX graphs need onnxruntime and onnx: pip install 'claimflow[onnx]'"
        ) from exc
    root = logging.getLogger()
    quiet, level = logging.NullHandler(), root.level
    root.addHandler(quiet)  # onnxruntime's tools log to the root logger: no basicConfig, no output
    root.setLevel(logging.ERROR)
    _drop_stale_partials(target)
    prepared, partial = _partial(target, ".prepared"), _partial(target)
    try:
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_dynamic(str(prepared), str(partial), weight_type=QuantType.QInt8)
        partial.replace(target)
    except Exception as exc:  # onnx / onnxruntime raise many kinds
        raise ModelError(f"cannot quantise {source} to int8: {exc}") from exc
    finally:
        root.removeHandler(quiet)
        root.setLevel(level)
        prepared.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)


def _partial(path: Path, kind: str = ".partial") -> Path:
    """This process's temporary file for ``path`` (processes exporting at once never share one)."""
    return path.with_name(f"{path.name}.{os.getpid()}{kind}")


STALE_SECONDS = 3600.0


def _drop_stale_partials(path: Path) -> None:
    """Remove what a killed export or quantisation of ``path`` left behind (older than an hour)."""
    now = time.time()
    for leftover in path.parent.glob(f"{path.name}.*.partial"):
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > STALE_SECONDS:
                leftover.unlink()

"""``encoders: {runtime: onnx}`` on the shipped encoders (real MiniLM-L6): the ONNX graph gives the torch
model's probabilities, is exported once into the cache (keyed by the artifact's content, an interrupted
export redone), runs without importing torch, and drives the pipeline's stages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from claimflow import PipelineConfig, Verifier
from claimflow.errors import ConfigError
from claimflow.graphs.components import shipped_artifact
from claimflow.io import bundled_example
from claimflow.models.store import ModelStore
from claimflow.predictors.encoder import EncoderClassifier
from claimflow.predictors.multitask import MultitaskEncoder
from claimflow.predictors.onnx_runtime import FastTokenizer

pytestmark = pytest.mark.slow

EXAMPLE = bundled_example()
PAIRS = [(EXAMPLE["claim"], sentence) for sentence in EXAMPLE["evidence"]] + [
    ("Masks reduce transmission.", "A cluster-randomised trial in 600 villages (n = 342,183) found fewer infections."),
    ("short", "x " * 300),  # truncated (longest_first) to the model's 128 tokens
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def test_the_tokenizer_gives_the_transformers_ids() -> None:
    from transformers import AutoTokenizer

    from claimflow.predictors.encoder import FieldEncoder
    from claimflow.predictors.multitask_model import encode_items

    location = ModelStore().resolve("minilm-l6").location
    fast, reference = FastTokenizer(location), AutoTokenizer.from_pretrained(location)
    items = [*PAIRS, ("A claim alone, with U.S. punctuation (don't).", None)]
    ours, theirs = fast.batch(items, 128), encode_items(reference, items, 128)
    for name in ("input_ids", "token_type_ids", "attention_mask"):
        assert ours[name].tolist() == theirs[name].tolist(), name
    fields = ("claim", "support_justification", "refute_justification")
    values = [
        {"claim": c, "support_justification": s * 5, "refute_justification": "None refutes it."} for c, s in PAIRS
    ]
    a, b = FieldEncoder(fast, fields, 96), FieldEncoder(reference, fields, 96)
    assert [a.texts(v) for v in values] == [b.texts(v) for v in values]
    assert a.batch(values)["input_ids"].tolist() == b.batch(values)["input_ids"].tolist()


def test_the_multitask_graph_gives_the_torch_probabilities_and_is_exported_once(cache: Path) -> None:
    artifact = shipped_artifact("evidence-multitask")
    store = ModelStore(cache)
    onnx = MultitaskEncoder(artifact, store=store, runtime="onnx")
    graphs = sorted((cache / "onnx").glob("*.onnx"))
    assert len(graphs) == 1 and graphs[0].name.startswith("evidence-multitask-")
    torch_model = MultitaskEncoder(artifact, store=store)
    tasks = ["stance", "relevance"]
    ours, theirs = onnx.probabilities(tasks, PAIRS), torch_model.probabilities(tasks, PAIRS)
    for task in tasks:
        for a, b in zip(ours[task], theirs[task], strict=True):
            assert a == pytest.approx(b, abs=1e-4)
    claim = onnx.head("claim").predict([{"claim": EXAMPLE["claim"]}])[0]
    assert claim.probabilities == pytest.approx(
        torch_model.head("claim").predict([{"claim": EXAMPLE["claim"]}])[0].probabilities, abs=1e-4
    )
    assert onnx.provenance().backend == "onnxruntime-multitask-full"
    assert onnx.stats.forward_passes >= 1
    stamp = graphs[0].stat().st_mtime_ns
    MultitaskEncoder(artifact, store=store, runtime="onnx")  # from the cache: not exported again
    assert graphs[0].stat().st_mtime_ns == stamp


def test_the_cached_graph_runs_without_torch(cache: Path) -> None:
    artifact = shipped_artifact("evidence-multitask")
    MultitaskEncoder(artifact, store=ModelStore(cache), runtime="onnx")  # exported (once) beforehand
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from claimflow.models.store import ModelStore\n"
        "from claimflow.predictors.multitask import MultitaskEncoder\n"
        f"m = MultitaskEncoder(Path({str(artifact)!r}), store=ModelStore(Path({str(cache)!r})), runtime='onnx')\n"
        "scores, relevance = m.stance_and_relevance('Vitamin D prevents COVID-19.', ['A trial found no effect.'])\n"
        "assert relevance is not None and len(scores) == 1\n"
        "print(sorted(n for n in ('torch', 'transformers') if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_changed_artifact_gets_a_new_graph_and_an_interrupted_export_is_redone(tmp_path: Path) -> None:
    artifact = tmp_path / "checkworthiness-encoder"
    shutil.copytree(shipped_artifact("checkworthiness-encoder"), artifact)
    store = ModelStore(tmp_path / "cache")
    first = EncoderClassifier(artifact, store=store, runtime="onnx")
    assert first.graph is not None
    path = first.graph.path
    reference = EncoderClassifier(artifact, store=store)
    inputs = [{"claim": EXAMPLE["claim"]}, {"claim": "I love sunny mornings."}]
    for a, b in zip(first.probabilities(inputs), reference.probabilities(inputs), strict=True):
        assert a == pytest.approx(b, abs=1e-4)
    # a crash mid-export leaves only a .partial file: the next load exports again and never reads it
    path.unlink()
    path.with_name(path.name + ".999999.partial").write_bytes(b"half a graph")
    again = EncoderClassifier(artifact, store=store, runtime="onnx")
    assert again.graph is not None and again.graph.path == path and path.exists()
    # another artifact content (here: its provenance) -> another cache key
    provenance = artifact / "provenance.json"
    provenance.write_text(provenance.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    changed = EncoderClassifier(artifact, store=store, runtime="onnx")
    assert changed.graph is not None and changed.graph.path != path


def test_int8_graph_is_close_to_fp32_and_named_in_the_provenance(cache: Path) -> None:
    artifact = shipped_artifact("evidence-multitask")
    store = ModelStore(cache)
    fp32 = MultitaskEncoder(artifact, store=store, runtime="onnx")
    int8 = MultitaskEncoder(artifact, store=store, runtime="onnx", quantize="int8")
    assert int8.graph is not None and int8.graph.path.name.endswith("-int8.onnx")
    assert int8.provenance().backend == "onnxruntime-multitask-full-int8"
    a, b = fp32.probabilities(["stance"], PAIRS)["stance"], int8.probabilities(["stance"], PAIRS)["stance"]
    gaps = [abs(x - y) for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True)]
    assert 0 < max(gaps) < 0.15, gaps  # another model (int8 weights), close to the fp32 one


def test_pipeline_runs_its_encoders_on_onnx(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMFLOW_CACHE_DIR", str(cache))
    results = {}
    for runtime in ("torch", "onnx"):
        config = PipelineConfig.from_dict(
            {"stages": ["check_worthiness", "evidence_stance"], "encoders": {"runtime": runtime}}
        )
        with Verifier(config) as verifier:
            results[runtime] = verifier.verify(EXAMPLE["claim"], EXAMPLE["evidence"], force=True)
    torch_run, onnx_run = results["torch"], results["onnx"]
    for stage in ("check_worthiness", "evidence_stance"):
        assert onnx_run.provenance.models[stage].backend.startswith("onnxruntime-")
        assert torch_run.provenance.models[stage].backend.startswith("transformers-")
    assert [s.label for s in onnx_run.evidence_stances] == [s.label for s in torch_run.evidence_stances]
    for a, b in zip(onnx_run.evidence_stances, torch_run.evidence_stances, strict=True):
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-4)


def test_an_unknown_runtime_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="runtime"):
        PipelineConfig.from_dict({"encoders": {"runtime": "tensorrt"}})

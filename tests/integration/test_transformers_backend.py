"""The transformers path on the real SmolLM2: GGUF -> HF conversion (cached) and exact scoring.

Both engines run the same Q4_1 weights (transformers dequantized), so their label distributions
must agree closely; this checks the prompt rendering, the label-word tokenization and the
left-padded batching of the transformers backend against llama.cpp.
"""

from __future__ import annotations

import pytest

from claimflow.config import BackendConfig
from claimflow.llm.base import GenRequest, Message, ScoreRequest
from claimflow.llm.factory import make_backend
from claimflow.models.store import ModelStore
from claimflow.prompts import TemplateRegistry
from claimflow.verbalizers import LogitVerbalizer

pytestmark = pytest.mark.slow

CLAIMS = [
    "The unemployment rate fell to 3.5 percent last year.",
    "I think we should all be kinder to each other.",
    "Vitamin D supplements prevent COVID-19 infection in adults.",
]


@pytest.fixture(scope="module")
def engines():  # type: ignore[no-untyped-def]
    store = ModelStore()
    hf = make_backend(BackendConfig(kind="transformers"), store)
    cpp = make_backend(BackendConfig(kind="llamacpp"), store)
    yield hf, cpp
    cpp.close()


def test_conversion_is_cached(engines) -> None:  # type: ignore[no-untyped-def]
    from claimflow.models.convert import hf_checkpoint

    store = ModelStore()
    path = hf_checkpoint(store.resolve("smollm2-135m-instruct"), store)
    assert (path / "config.json").exists() and (path / "claimflow-conversion.json").exists()
    assert hf_checkpoint(store.resolve("smollm2-135m-instruct"), store) == path


@pytest.mark.parametrize("template_ref", ["checkworthiness_short@1", "veracity_justifications@1"])
def test_transformers_and_llamacpp_agree_on_label_distributions(engines, template_ref: str) -> None:  # type: ignore[no-untyped-def]
    hf, cpp = engines
    template = TemplateRegistry(include_env=False).get(template_ref)
    values = {"support_justification": "A trial supports it.", "refute_justification": "A review refutes it."}
    rendered = [template.render({k: ({"claim": c} | values)[k] for k in template.inputs}) for c in CLAIMS]
    verbalizer = LogitVerbalizer(template.label_words or {})
    requests = [ScoreRequest(r.messages, verbalizer.candidates, r.assistant_prefix) for r in rendered]
    batched = hf.score(requests)  # one left-padded batch
    single = [hf.score([r])[0] for r in requests]
    cpp_scores = cpp.score(requests)
    for b, s, c in zip(batched, single, cpp_scores, strict=True):
        for word in b:
            assert b[word] == pytest.approx(s[word], abs=2e-3)  # padding does not change scores
        p_hf = verbalizer.from_logprobs(b).probabilities
        p_cpp = verbalizer.from_logprobs(c).probabilities
        for label in p_hf:
            assert p_hf[label] == pytest.approx(p_cpp[label], abs=0.08), (template_ref, p_hf, p_cpp)


def test_generation_is_greedy_and_bounded(engines) -> None:  # type: ignore[no-untyped-def]
    hf, _ = engines
    request = GenRequest((Message("user", "Name a colour."),), max_tokens=12)
    first, again = hf.generate([request])[0], hf.generate([request])[0]
    assert first.text == again.text and first.text.strip()
    assert first.completion_tokens <= 12
    assert hf.stats.forward_passes > 0


def test_a_backend_with_its_own_threads_and_seed_leaves_the_process_settings_alone() -> None:
    """torch's thread count and RNG are process-global; a backend sets them around its own calls only."""
    import torch

    before_threads = torch.get_num_threads()
    torch.manual_seed(2024)
    expected = torch.rand(2)
    torch.manual_seed(2024)
    backend = make_backend(BackendConfig(kind="transformers", threads=1, seed=7), ModelStore())
    request = GenRequest((Message("user", "Say one word."),), max_tokens=3, temperature=0.8)
    backend.generate([request])
    assert torch.get_num_threads() == before_threads
    assert torch.equal(torch.rand(2), expected)

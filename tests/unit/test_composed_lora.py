"""LoRA composition (LoraHub, LoraConcat, LoraMap) on a tiny random causal LM: the deltas are the paper's,
a single concatenated source reproduces PEFT's own adapter, and saved compositions load back exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from claimflow.errors import ModelError
from claimflow.predictors.composed_lora import (
    ComposedLoraLinear,
    compose_model,
    composed_layers,
    layer_index,
    load_composed_tensors,
    read_source,
    save_composed_tensors,
    trainable_count,
)


def tiny_llama(seed: int = 0):  # type: ignore[no-untyped-def]
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def save_source(folder: Path, seed: int, r: int = 4, alpha: int = 8) -> Path:
    from peft import LoraConfig, get_peft_model

    base = tiny_llama()
    torch.manual_seed(seed)
    lora = LoraConfig(r=r, lora_alpha=alpha, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(base, lora)
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("sources")
    return [save_source(root / f"s{i}", seed=10 + i) for i in range(3)]


def test_read_source_folds_the_scaling_into_b(sources: list[Path]) -> None:
    source = read_source(sources[0])
    assert source.rank == 4 and source.scaling == 2.0
    assert sorted(source.a) == [f"model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]
    name = "model.layers.0.self_attn.v_proj"
    assert source.a[name].shape == (4, 32) and source.b[name].shape == (16, 4)  # v_proj: 2 kv heads x 8


def test_one_concatenated_source_is_exactly_the_peft_adapter(sources: list[Path]) -> None:
    from peft import PeftModel

    ids = torch.tensor([[1, 5, 9, 3, 7]])
    with torch.no_grad():
        peft_logits = PeftModel.from_pretrained(tiny_llama(), str(sources[0])).eval()(ids).logits
        composed = tiny_llama()
        compose_model(composed, [read_source(sources[0])], "loraconcat")
        ours = composed(ids).logits
    assert torch.allclose(peft_logits, ours, atol=1e-5)


def test_the_three_deltas(sources: list[Path]) -> None:
    loaded = [read_source(p) for p in sources]
    name = "model.layers.1.self_attn.q_proj"
    expected_sum = sum(s.b[name] @ s.a[name] for s in loaded)

    concat = tiny_llama()
    compose_model(concat, loaded, "loraconcat")
    layer = composed_layers(concat)[name]
    assert torch.allclose(layer.delta_weight(), expected_sum, atol=1e-6)  # B_cat A_cat = sum of B_t A_t
    assert trainable_count(concat) == sum(2 * 12 * (32 if "q_proj" in n else 24) for n in composed_layers(concat))

    hub = tiny_llama()
    compose_model(hub, loaded, "lorahub")
    layer = composed_layers(hub)[name]
    assert torch.count_nonzero(layer.delta_weight()) == 0  # coefficients start at zero: the base model
    with torch.no_grad():
        layer.coef.copy_(torch.tensor([0.0, 1.0, 0.0]))
    assert torch.allclose(layer.delta_weight(), loaded[1].b[name] @ loaded[1].a[name], atol=1e-6)
    assert trainable_count(hub) == 3 * 2  # three coefficients per block (its q_proj and v_proj share them)

    mapped = tiny_llama()
    compose_model(mapped, loaded, "loramap", map_dim=5)
    layer = composed_layers(mapped)[name]
    assert torch.count_nonzero(layer.delta_weight()) == 0  # B_map starts at zero
    trainable = {n for n, p in mapped.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(("a_map", "b_map")) for n in trainable)
    assert trainable_count(mapped) == 4 * 2 * 12 * 5  # per module: 2 x 3r x m


def test_saved_compositions_load_back_exactly(sources: list[Path], tmp_path: Path) -> None:
    loaded = [read_source(p) for p in sources]
    ids = torch.tensor([[2, 4, 6, 8]])
    for method in ("lorahub", "loraconcat", "loramap"):
        model = tiny_llama()
        compose_model(model, loaded, method, map_dim=3)  # type: ignore[arg-type]
        with torch.no_grad():
            for layer in composed_layers(model).values():
                for param in layer.parameters(recurse=False):
                    param.add_(torch.randn_like(param) * 0.1)
            expected = model(ids).logits
        save_composed_tensors(model, tmp_path / f"{method}.safetensors")
        fresh = tiny_llama()
        zeros = [type(s)(s.path, s.sha256, s.rank, s.scaling, {k: v * 0 for k, v in s.a.items()}, s.b) for s in loaded]
        compose_model(fresh, zeros, method, map_dim=3)  # type: ignore[arg-type]
        load_composed_tensors(fresh, tmp_path / f"{method}.safetensors")
        with torch.no_grad():
            assert torch.allclose(fresh(ids).logits, expected, atol=1e-6), method


def test_mismatches_are_clear_errors(sources: list[Path], tmp_path: Path) -> None:
    loaded = read_source(sources[0])
    with pytest.raises(ModelError, match="at least one"):
        compose_model(tiny_llama(), [], "loramap")
    other = type(loaded)(loaded.path, "x", 4, 2.0, dict(list(loaded.a.items())[:2]), dict(list(loaded.b.items())[:2]))
    with pytest.raises(ModelError, match="other modules"):
        compose_model(tiny_llama(), [loaded, other], "loraconcat")
    wrong = type(loaded)(
        loaded.path, "x", 4, 2.0, {k: torch.zeros(4, 7) for k in loaded.a}, {k: torch.zeros(5, 4) for k in loaded.b}
    )
    with pytest.raises(ModelError, match="does not fit"):
        compose_model(tiny_llama(), [wrong], "loraconcat")
    with pytest.raises(ModelError, match="not a LoRA adapter folder"):
        read_source(tmp_path)
    model = tiny_llama()
    compose_model(model, [loaded], "loramap", map_dim=2)
    save_composed_tensors(model, tmp_path / "m.safetensors")
    bigger = tiny_llama()
    compose_model(bigger, [loaded], "loramap", map_dim=3)
    with pytest.raises(ModelError, match="another shape"):
        load_composed_tensors(bigger, tmp_path / "m.safetensors")


def test_lorahub_needs_one_rank() -> None:
    base = torch.nn.Linear(4, 4)
    with pytest.raises(ModelError, match="one rank"):
        ComposedLoraLinear(
            base, [torch.zeros(2, 4), torch.zeros(3, 4)], [torch.zeros(4, 2), torch.zeros(4, 3)], "lorahub"
        )


def test_layer_index() -> None:
    assert layer_index("model.layers.7.self_attn.q_proj") == 7
    assert layer_index("transformer.h.11.attn.c_attn") == 11
    assert layer_index("lm_head") == -1

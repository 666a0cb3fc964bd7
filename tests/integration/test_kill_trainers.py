"""Each trainer's own command SIGKILLed at >= 20 seeded points, each kill resumed by the next run: the
finished run's trained tensors, loss history and dev scores equal an uninterrupted run's exactly.

The encoder trainers train the real MiniLM-L6; the causal-LM trainers (prompt tuning, LoRA, reasoning
LoRA, the compositions) a 2-layer LLaMA of SmolLM2's shape and tokenizer with random weights, made for
the test: what is checked is the resume machinery, and a run of the real 135M model costs ~40 s here
(each trainer's command is killed once on the real SmolLM2 in test_prompt_tuning and the like).

Kill points alternate between a seeded delay anywhere in the run (model loading and the final
evaluation included) and "once the checkpoint was replaced k times"; every run is a forked child of
this process (torch and the trainers imported once), see ``tests/integration/sigkill.py``. The shared
loop's mid-write kills (a half-written checkpoint) are in test_kill_training.py.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

torch = pytest.importorskip("torch", reason="training needs torch (pip install 'claimflow[train]')")


pytestmark = pytest.mark.slow
KILLS = 20
ROOT = Path(__file__).resolve().parents[2]
FIXTURE_DATA = ROOT / "tests" / "fixtures" / "evals"
REASONING_ROWS = ROOT / "data" / "derived" / "reasoning" / "difference_cot-covidfact-train.jsonl.gz"
LOOP_STATE = Path("out") / "checkpoint" / "state.pt"
Scenario = Callable[[Path, Path], tuple[list[str], Path]]  # (run folder, base) -> CLI arguments, checkpoint file


def _yaml(folder: Path, config: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(config, default=str))), encoding="utf-8")
    return path


def _training(steps: int, **extra: Any) -> dict[str, Any]:
    return {"batch_size": 2, "max_steps": steps, "eval_every": 3, "checkpoint_every": 1, "patience": 50, **extra}


def _distilled(folder: Path) -> Path:
    rows = [
        {"id": f"covidfact-train-{i}", "support_justification": s, "refute_justification": r}
        for i, (s, r) in enumerate([("It supports the claim.", ""), ("", "The study refutes it.")])
    ]
    path = folder / "distilled.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def classifier(folder: Path, base: Path) -> tuple[list[str], Path]:
    folder.mkdir(parents=True)
    config = {
        "output_dir": folder / "out",
        "mode": "lora",  # a full fine-tune's checkpoint is 270 MB: the loop's own test covers that size
        "inputs": ["claim", "evidence"],
        "max_length": 48,
        "data": {"dataset": "covidfact", "data_dir": FIXTURE_DATA, "dev_split": "train"},
        "training": _training(9, learning_rate=1.0e-4, warmup_steps=1),
        "threads": 1,
    }
    path = _yaml(folder, config)
    return ["finetune", "classifier", "--config", str(path), "--evaluate-on", "train"], folder / LOOP_STATE


def multitask(folder: Path, base: Path) -> tuple[list[str], Path]:
    config = {
        "output_dir": folder / "out",
        "mode": "lora",
        "max_length": 48,
        "data": {
            "data_dir": FIXTURE_DATA,
            "stance_sources": ["healthver", "scifact", "climate_fever"],
            "dev_fraction": 0.5,
            "dev_cap": 8,
        },
        "training": _training(9, eval_batch_size=8, learning_rate=1.0e-3, warmup_steps=1),
        "threads": 1,
    }
    return ["finetune", "multitask", "--config", str(_yaml(folder, config))], folder / LOOP_STATE


def prompt_tuning(folder: Path, base: Path) -> tuple[list[str], Path]:
    config = {
        "output_dir": folder / "out",
        "base_model": base,
        "data": {"data_dir": FIXTURE_DATA, "test_split": "dev-test"},
        "num_virtual_tokens": 4,
        "max_steps": 8,
        "eval_every": 3,
        "checkpoint_every": 1,
        "batch_size": 2,
        "patience": 50,
        "threads": 1,
    }
    return ["finetune", "prompt-tuning", "--config", str(_yaml(folder, config))], folder / LOOP_STATE


def causal_lora(folder: Path, base: Path) -> tuple[list[str], Path]:
    folder.mkdir(parents=True)
    train = _distilled(folder)
    config = {
        "output_dir": folder / "out",
        "base_model": base,
        "head": "cls",
        "max_input_tokens": 48,
        "data": {
            "dataset": "covidfact",
            "data_dir": FIXTURE_DATA,
            "train_file": train,
            "dev_split": "train",
            "dev_file": train,
        },
        "training": _training(8),
        "threads": 1,
    }
    return ["finetune", "lora", "--config", str(_yaml(folder, config))], folder / LOOP_STATE


def reasoning_lora(folder: Path, base: Path) -> tuple[list[str], Path]:
    folder.mkdir(parents=True)
    rows = folder / "difference_cot.jsonl"
    rows.write_bytes(gzip.decompress(REASONING_ROWS.read_bytes()))
    config = {
        "output_dir": folder / "out",
        "base_model": base,
        "data_file": rows,
        "task": "difference_cot",
        "max_input_tokens": 64,
        "max_target_tokens": 24,
        "dev_fraction": 0.25,
        "lora_r": 2,
        "training": _training(8, eval_batch_size=4),
        "threads": 1,
    }
    return ["finetune", "reasoning-lora", "--config", str(_yaml(folder, config))], folder / LOOP_STATE


def _compose(method: str, state: Path) -> Scenario:
    def scenario(folder: Path, base: Path) -> tuple[list[str], Path]:
        config = {
            "output_dir": folder / "out",
            "base_model": base,
            "method": method,
            "sources": [base.parent / "sources" / f"lora{i}" for i in range(2)],
            "map_dim": 2,
            "max_input_tokens": 64,
            "data": {"dataset": "covidfact", "data_dir": FIXTURE_DATA, "dev_split": "train"},
            "hub": {"shots": 2, "budget": 12, "dump_every": 1},
            "training": _training(8),
            "threads": 1,
        }
        return ["finetune", "compose", "--config", str(_yaml(folder, config))], folder / state

    return scenario


_MAKE_TINY_LLAMA = """
import sys, torch
from pathlib import Path
from peft import LoraConfig, get_peft_model
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
from claimflow.models.convert import hf_checkpoint
from claimflow.models.store import ModelStore
store = ModelStore()
real = hf_checkpoint(store.resolve("smollm2-135m-instruct"), store)
out = Path(sys.argv[1])
tokenizer = AutoTokenizer.from_pretrained(real)
torch.manual_seed(0)
config = LlamaConfig.from_pretrained(real)
config.update({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "head_dim": 8})
LlamaForCausalLM(config).save_pretrained(out / "tiny-llama")
tokenizer.save_pretrained(out / "tiny-llama")
for i in range(2):
    torch.manual_seed(i)
    model = get_peft_model(LlamaForCausalLM.from_pretrained(out / "tiny-llama"),
                           LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.01)
    model.save_pretrained(out / "sources" / f"lora{i}")
"""


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer LLaMA with SmolLM2's tokenizer and config otherwise, and two random LoRAs on it (the
    compositions' sources); made in a separate process: this one forks the runs and does no torch work."""
    root = tmp_path_factory.mktemp("bases")
    subprocess.run([sys.executable, "-c", _MAKE_TINY_LLAMA, str(root)], check=True, timeout=300, capture_output=True)
    return root / "tiny-llama"


SCENARIOS: dict[str, Scenario] = {
    "classifier": classifier,
    "multitask": multitask,
    "prompt-tuning": prompt_tuning,
    "lora": causal_lora,
    "reasoning-lora": reasoning_lora,
    "compose-loramap": _compose("loramap", LOOP_STATE),
    "compose-lorahub": _compose("lorahub", Path("out") / "checkpoint" / "lorahub.pkl"),
}


scenario_classifier = classifier  # the names the fork server imports (python -m tests.integration.sigkill)
scenario_multitask = multitask
scenario_prompt_tuning = prompt_tuning
scenario_lora = causal_lora
scenario_reasoning_lora = reasoning_lora
scenario_compose_loramap = SCENARIOS["compose-loramap"]
scenario_compose_lorahub = SCENARIOS["compose-lorahub"]


def _tensors(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    found = {}
    for path in sorted((folder / "out" / "best").rglob("*.safetensors")):
        for name, value in load_file(path).items():
            found[f"{path.name}:{name}"] = value
    assert found, f"no trained tensors under {folder / 'out' / 'best'}"
    return found


def _history(folder: Path) -> list[dict[str, Any]]:
    checkpoint = folder / "out" / "checkpoint"
    if (checkpoint / "lorahub-history.json").exists():
        history: list[dict[str, Any]] = json.loads((checkpoint / "lorahub-history.json").read_text())
        return history
    return list(torch.load(checkpoint / "state.pt", weights_only=False)["state"]["history"])


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_trainer_killed_at_20_points_finishes_as_if_never_killed(tmp_path: Path, tiny_llama: Path, name: str) -> None:
    # the fork server runs in a fresh process: forked children of this one (which has run torch in
    # earlier tests) can hang in torch's thread pool
    function = "scenario_" + name.replace("-", "_")
    command = [
        sys.executable,
        "-m",
        "tests.integration.sigkill",
        "--train",
        "tests.integration.test_kill_trainers",
        function,
        str(tmp_path),
    ]
    done = subprocess.run(
        [*command, str(KILLS), str(sorted(SCENARIOS).index(name)), str(tiny_llama)],
        capture_output=True,
        text=True,
        timeout=800,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["clean"] = Path(report["clean"])
    for cycle in report["cycles"]:
        cycle["folder"] = Path(cycle["folder"])
    assert report["killed"] >= KILLS
    expected_tensors, expected_history = _tensors(report["clean"]), _history(report["clean"])
    steps = [h.get("step", h.get("evaluation")) for h in expected_history if "loss" in h]
    assert steps == list(range(1, len(steps) + 1)) and steps
    for cycle in report["cycles"]:
        folder = cycle["folder"]
        assert _history(folder) == expected_history, f"{folder.name} ({cycle['outcomes']}): history differs"
        got = _tensors(folder)
        assert got.keys() == expected_tensors.keys()
        for key, value in expected_tensors.items():
            assert torch.equal(got[key], value), f"{folder.name} ({cycle['outcomes']}): {key} differs"

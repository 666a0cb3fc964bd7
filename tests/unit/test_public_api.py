"""Each subpackage declares its public API in ``__init__`` (``__all__``): every listed name resolves,
none is private, and importing the packages loads no engine (torch, transformers, llama.cpp, vLLM,
the OpenAI client): the engine backends stay in their modules, the trainers are imported on first
access."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ("claimflow.llm", "claimflow.models", "claimflow.finetune", "claimflow.evals")
ENGINES = ("torch", "transformers", "llama_cpp", "peft", "vllm", "openai")


@pytest.mark.parametrize("name", PACKAGES)
def test_every_name_in_all_resolves_and_is_public(name: str) -> None:
    package = importlib.import_module(name)
    exported = list(package.__all__)
    assert exported and len(exported) == len(set(exported))
    assert [n for n in exported if n.startswith("_")] == []
    missing = [n for n in exported if getattr(package, n, None) is None]
    assert missing == []
    assert set(exported) <= set(dir(package))


def test_importing_the_packages_loads_no_engine() -> None:
    code = f"import sys\nimport {', '.join(PACKAGES)}\nprint(' '.join(m for m in {ENGINES!r} if m in sys.modules))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""


def test_the_trainers_are_imported_on_first_access() -> None:
    import claimflow.finetune as finetune
    from claimflow.finetune.classifier import ClassifierTrainer
    from claimflow.finetune.loop import ResumableLoop

    assert finetune.ClassifierTrainer is ClassifierTrainer and finetune.ResumableLoop is ResumableLoop
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = finetune.nope  # type: ignore[attr-defined]

"""`verify` latency on the bundled example as a ratio to its compute floor, by node, with peak RSS.

    .venv/bin/python benchmarks/compute_floor.py [--repeats 5] [--config FILE]

The floor is the model work the default pipeline cannot avoid, recorded during a real ``verify``
and then replayed alone, without the pipeline around it:

- encoder stages: every encoder forward pass the stage ran, on the very tensors it built (the
  tokenization is left out of the floor);
- justify: llama.cpp's evaluation of each justification prompt (the prefix it shares with the
  prompt before it evaluated once, as the KV cache allows) plus one decode step per generated token
  (the completion's own tokens fed back one by one, greedy, no sampling or detokenizing);
- veracity (``stance_features``): no model pass at all, so its floor is 0 and its time is overhead.

Each figure is the median over ``--repeats`` verify runs (after one warm-up) and as many replays,
interleaved run / replay so a drift of the machine hits both. Peak RSS is the process's high-water mark.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import statistics
import time
from collections import defaultdict
from typing import Any

from claimflow import PipelineConfig, Verifier
from claimflow.io import bundled_example


class Recorder:
    """Stands in for a model object: records the calls the pipeline makes on it (``methods``)."""

    def __init__(self, target: Any, methods: tuple[str, ...]) -> None:
        self._target, self._methods = target, methods
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any], Any]] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name not in self._methods:
            return value

        def recorded(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            self.calls.append((name, args, kwargs, result))
            return result

        return recorded

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self._target(*args, **kwargs)
        self.calls.append(("__call__", args, kwargs, result))
        return result


def torch_model_of(predictor: Any) -> tuple[Any, str]:
    """The object holding the model of a stage's predictor (a torch module, or the ONNX Runtime graph
    of ``encoders.runtime: onnx``) and the attribute naming it."""
    holders = [predictor]
    while holders:
        holder = holders.pop(0)
        if getattr(holder, "graph", None) is not None:
            return holder, "graph"
        model = getattr(holder, "model", None)
        if model is not None and (hasattr(model, "parameters") or isinstance(model, Recorder)):
            return holder, "model"
        holders += [h for h in (getattr(holder, "encoder", None), model) if h is not None]
    raise SystemExit(f"no torch model found in {predictor!r}")


def replay_encoder(recorder: Recorder) -> float:
    model = recorder._target
    torch_model = hasattr(model, "parameters")
    if torch_model:
        import torch
    start = time.perf_counter()
    with torch.inference_mode() if torch_model else contextlib.nullcontext():
        for name, args, kwargs, _ in recorder.calls:
            (model if name == "__call__" else getattr(model, name))(*args, **kwargs)
    return time.perf_counter() - start


def replay_llama(llm: Any, calls: list[tuple[str, tuple[Any, ...], dict[str, Any], Any]]) -> tuple[float, int, int]:
    """Seconds, prompt tokens and generated tokens of the justify floor on the same ``llama_cpp.Llama``."""
    llm.reset()
    previous: list[int] = []
    prompt_tokens = generated = 0
    start = time.perf_counter()
    for name, _, kwargs, response in calls:
        if name != "create_completion":
            continue
        prompt = list(kwargs["prompt"])
        common = 0
        for a, b in zip(previous, prompt, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(prompt) - 1)
        llm.n_tokens = common
        llm.eval(prompt[common:])
        prompt_tokens += len(prompt) - common
        completion = llm.tokenize(response["choices"][0]["text"].encode("utf-8"), add_bos=False, special=False)
        n = int(response["usage"]["completion_tokens"])
        completion = (completion + [llm.token_eos()] * n)[:n]  # the stop token counts as one step
        for token in completion[:-1] if completion else []:
            llm.eval([token])
        generated += n
        previous = prompt + completion[:-1]
    return time.perf_counter() - start, prompt_tokens, generated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--config", default=None)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp and torch threads (default: all cores)")
    args = parser.parse_args()

    config = PipelineConfig.from_yaml(args.config) if args.config else PipelineConfig()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        backends = {k: b.model_copy(update={"threads": args.threads}) for k, b in config.backends.items()}
        config = config.model_copy(update={"backends": backends})
    example = bundled_example()
    start = time.perf_counter()
    verifier = Verifier(config).load()
    load_seconds = time.perf_counter() - start
    verifier.verify(example["claim"], example["evidence"], force=True)  # warm-up; loads every stage

    components = verifier.components
    recorders: dict[str, Recorder] = {}
    for stage in ("check_worthiness", "evidence_stance"):
        holder, attribute = torch_model_of(components.classifier(stage))
        target = getattr(holder, attribute)
        if isinstance(target, Recorder):  # the stages share one model
            recorders[stage] = target
            continue
        recorders[stage] = Recorder(target, ("all_heads", "run"))
        setattr(holder, attribute, recorders[stage])
    backend: Any = components.backend(config.justify.backend)
    while hasattr(backend, "inner"):  # the tracing wrapper
        backend = backend.inner
    llm_recorder = Recorder(backend.llm, ("create_completion",))
    backend.llm = llm_recorder

    node_times: dict[str, list[float]] = defaultdict(list)
    totals: list[float] = []
    floors: dict[str, list[float]] = defaultdict(list)
    tokens: tuple[int, int] = (0, 0)
    for _ in range(args.repeats):
        for recorder in (*recorders.values(), llm_recorder):
            recorder.calls.clear()
        result = verifier.verify(example["claim"], example["evidence"], force=True)
        for node, seconds in result.provenance.node_seconds.items():
            node_times[node].append(seconds)
        totals.append(result.provenance.total_seconds)
        shared = recorders["check_worthiness"] is recorders["evidence_stance"]
        for stage, recorder in recorders.items():
            if shared and stage == "evidence_stance":
                continue
            floors[stage].append(replay_encoder(recorder))
        seconds, *counts = replay_llama(backend.llm._target, llm_recorder.calls)
        floors["justify"].append(seconds)
        tokens = (counts[0], counts[1])
        floors["veracity"].append(0.0)
        backend.llm.reset()
    verifier.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"model load {load_seconds:.2f} s; {len(example['evidence'])} evidence sentences; {args.repeats} runs after "
        f"1 warm-up; {platform.machine()}, {os.cpu_count()} cores (shared), threads {args.threads or 'all'}, "
        f"Python {platform.python_version()}"
    )
    print()
    print("| node | median s | floor s (replayed alone) | ratio | what the floor is |")
    print("|---|---|---|---|---|")
    what = {
        "check_worthiness": "encoder forward passes",
        "evidence_stance": "encoder forward passes",
        "justify": f"llama.cpp: {tokens[0]} prompt tokens + {tokens[1]} decode steps",
        "veracity": "no model pass",
    }
    floor_total = 0.0
    for node in node_times:
        median = statistics.median(node_times[node])
        floor = statistics.median(floors.get(node, [0.0]))
        floor_total += floor
        ratio = f"{median / floor:.2f}x" if floor > 0 else "-"
        print(f"| {node} | {median:.3f} | {floor:.3f} | {ratio} | {what.get(node, '')} |")
    total = statistics.median(totals)
    print(f"| **verify (total)** | {total:.3f} | {floor_total:.3f} | {total / floor_total:.2f}x | |")
    print()
    print(f"peak RSS of the process (models loaded, {args.repeats + 1} verify runs): {peak:.0f} MiB")


if __name__ == "__main__":
    main()

"""Wall time of `verify` on the bundled example (1 claim, 5 evidence sentences), split by node.

    .venv/bin/python benchmarks/verify_latency.py --repeats 5 [--config FILE] [--evidence-count 500]

Prints a Markdown table (median and min over the repeats, after one warm-up run) with model calls,
forward passes and prompt tokens evaluated per node. Model loading is timed separately.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

from claimflow import PipelineConfig, Verifier
from claimflow.io import bundled_example


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--config", default=None)
    parser.add_argument("--evidence-count", type=int, default=0, help="repeat the evidence up to N sentences")
    parser.add_argument("--json", action="store_true", help="also print the raw measurements as JSON")
    args = parser.parse_args()

    config = PipelineConfig.from_yaml(args.config) if args.config else PipelineConfig()
    example = bundled_example()
    evidence = list(example["evidence"])
    if args.evidence_count:
        evidence = [f"{evidence[i % len(evidence)]} (copy {i})" for i in range(args.evidence_count)]

    start = time.perf_counter()
    verifier = Verifier(config).load()
    load_seconds = time.perf_counter() - start
    backend = verifier.components.backend(config.check_worthiness.backend)

    verifier.verify(example["claim"], evidence, force=True)  # warm-up
    runs = []
    for _ in range(args.repeats):
        tokens_before = backend.stats.prompt_tokens
        result = verifier.verify(example["claim"], evidence, force=True)
        runs.append((result.provenance, backend.stats.prompt_tokens - tokens_before))
    verifier.close()

    nodes = list(runs[0][0].node_seconds)
    print(f"model load: {load_seconds:.2f} s; {len(evidence)} evidence sentences; {args.repeats} runs after 1 warm-up")
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print()
    print("| node | median s | min s | model calls | forward passes |")
    print("|---|---|---|---|---|")
    for node in nodes:
        times = [p.node_seconds[node] for p, _ in runs]
        prov = runs[0][0]
        print(
            f"| {node} | {statistics.median(times):.3f} | {min(times):.3f} | "
            f"{prov.model_calls[node]} | {prov.forward_passes[node]} |"
        )
    totals = [p.total_seconds for p, _ in runs]
    print(f"| **total** | {statistics.median(totals):.3f} | {min(totals):.3f} | | |")
    print()
    print(f"prompt tokens evaluated per verify (after prefix-cache reuse): {statistics.median(t for _, t in runs):.0f}")
    if args.json:
        print(json.dumps([p.model_dump() for p, _ in runs], indent=2))


if __name__ == "__main__":
    main()

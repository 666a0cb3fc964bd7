"""Throughput of ``claimflow batch`` on COVID-Fact dev claims: the claim-at-a-time loop against
cross-claim batching (chunks), and optionally worker processes, side by side in one run.

    .venv/bin/python benchmarks/batch_throughput.py --claims 200 --stages check_worthiness,evidence_stance
    .venv/bin/python benchmarks/batch_throughput.py --claims 60 --repeats 1 --workers 2
    (add --torch-threads 1 on a machine shared with other jobs: torch's spinning threads then dominate)

Each mode writes a fresh output file through the library's batch engines (``run_batch`` with
``chunk_size=1`` is the claim-at-a-time loop). The verifier is loaded and warmed up once before the
timed runs (model load reported apart); the worker mode's time includes starting its processes and
their model loads. The modes run in turns within each repeat; medians over the repeats are printed
with the ratio to the loop, and the lines of every mode are checked against the loop's (same
statuses and labels). The data folder is ``--data``, else ``$CLAIMFLOW_DATA``, else ``../shared/data``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from claimflow.batch import ConfigVerifier, load_items, run_batch, run_batch_workers
from claimflow.config import STAGE_ORDER, PipelineConfig
from claimflow.verifier import Verifier


def dev_claims(data: Path, n: int, out: Path) -> Path:
    rows = [json.loads(line) for line in (data / "covidfact" / "dev.jsonl").read_text(encoding="utf-8").splitlines()]
    with out.open("w", encoding="utf-8") as handle:
        for i, row in enumerate(rows[:n]):
            handle.write(json.dumps({"id": f"dev-{i}", "claim": row["claim"], "evidence": row["evidence"]}) + "\n")
    return out


def labels(path: Path) -> list[tuple[Any, ...]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        result = record.get("result") or {}
        stances = tuple(s["label"] for s in result.get("evidence_stances", []))
        cw = (result.get("check_worthiness") or {}).get("label")
        verdict = (result.get("veracity") or {}).get("label")
        out.append((record["id"], result.get("status"), cw, stances, verdict))
    return out


def torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return int(torch.get_num_threads())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0, help="also time this many worker processes (0: skip)")
    parser.add_argument("--stages", default=None, help="comma-separated subset (default: the whole pipeline)")
    parser.add_argument("--config", default=None)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument(
        "--torch-threads", type=int, default=None, help="torch threads in this process (default: torch's own)"
    )
    args = parser.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)

    data = args.data or Path(
        os.environ.get("CLAIMFLOW_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    )
    config = PipelineConfig.from_yaml(args.config) if args.config else PipelineConfig()
    if args.stages:
        stages = tuple(s.strip() for s in args.stages.split(","))
        config = config.with_stages([s for s in STAGE_ORDER if s in stages])
    work = Path(tempfile.mkdtemp(prefix="batch-throughput-"))
    source = dev_claims(data, args.claims, work / "claims.jsonl")
    items = load_items(str(source))

    start = time.perf_counter()
    verifier = Verifier(config).load()
    load_seconds = time.perf_counter() - start
    run_batch(verifier, items[:4], work / "warmup.jsonl", chunk_size=4)  # first-call costs out of the timings

    modes: dict[str, Any] = {
        "claim at a time (chunk 1)": lambda out: run_batch(verifier, items, out, chunk_size=1),
        f"cross-claim batching (chunk {args.chunk_size})": lambda out: run_batch(
            verifier, items, out, chunk_size=args.chunk_size
        ),
    }
    if args.workers:
        threads = max(1, (os.cpu_count() or 1) // args.workers)
        factory = ConfigVerifier(config, threads=threads)
        modes[f"{args.workers} workers x {threads} threads (chunk {args.chunk_size}, incl. start-up)"] = lambda out: (
            run_batch_workers(factory, items, out, workers=args.workers, chunk_size=args.chunk_size)
        )
    seconds: dict[str, list[float]] = {name: [] for name in modes}
    outputs: dict[str, Path] = {}
    for repeat in range(args.repeats):
        for n, (name, run) in enumerate(modes.items()):
            out = work / f"out-{repeat}-{n}.jsonl"
            t0 = time.perf_counter()
            run(out)
            seconds[name].append(time.perf_counter() - t0)
            outputs[name] = out
            print(f"repeat {repeat}: {name}: {seconds[name][-1]:.1f} s", file=sys.stderr, flush=True)
    verifier.close()

    loop = next(iter(modes))
    reference = labels(outputs[loop])
    statuses: dict[str, int] = {}
    for _, status, *_ in reference:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    print(
        f"{len(items)} COVID-Fact dev claims, stages {','.join(config.stages)}; {args.repeats} repeat(s); "
        f"model load {load_seconds:.1f} s (not timed); statuses {statuses}; torch threads {torch_threads()}"
    )
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print()
    print("| mode | median s | claims/s | x loop | lines equal to the loop's |")
    print("|---|---|---|---|---|")
    base = statistics.median(seconds[loop])
    for name in modes:
        median = statistics.median(seconds[name])
        equal = labels(outputs[name]) == reference
        print(f"| {name} | {median:.1f} | {len(items) / median:.2f} | {base / median:.2f} | {equal} |")


if __name__ == "__main__":
    main()

"""Start-up of `claimflow verify`: wall time to the first result when the gate stops, and what it is made of.

    .venv/bin/python benchmarks/startup.py [--repeats 5]

The verify command runs twice: with the default encoders (torch) and with ``encoders: {runtime: onnx}``
(its ONNX graph exported into the model cache by the warm-up round, so the timed runs load it).

Each command runs in a fresh process, all of them in turn (A B C ... A B C ...) so a drift of the
machine's speed hits every one alike; each figure is the median over ``--repeats`` (min and max
beside it) with the process's peak RSS. The verify run's own ``total_seconds`` and its gate node's
seconds come from its JSON output: the rest of its wall time is interpreter start, imports and loading.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOT_WORTHY = "I had pizza for lunch today."

PY = sys.executable
COMMANDS: dict[str, list[str]] = {
    "python (empty)": [PY, "-c", "pass"],
    "import claimflow": [PY, "-c", "import claimflow"],
    "import torch": [PY, "-c", "import torch"],
    "import torch, transformers": [PY, "-c", "import torch, transformers"],
    "+ transformers BERT model": [PY, "-c", "import torch, transformers.models.bert.modeling_bert"],
    "+ peft": [PY, "-c", "import torch, transformers.models.bert.modeling_bert, peft"],
    "import llama_cpp": [PY, "-c", "import llama_cpp"],
    "import onnxruntime, tokenizers": [PY, "-c", "import onnxruntime, tokenizers"],
}


def run(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stdout of one fresh process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command} failed with exit status {process.returncode}")
    return seconds, usage.ru_maxrss / 1024, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    claimflow = shutil.which("claimflow", path=os.path.dirname(PY)) or "claimflow"
    onnx_config = Path(tempfile.mkdtemp(prefix="claimflow-startup-")) / "onnx.yaml"
    onnx_config.write_text("encoders: {runtime: onnx}\n", encoding="utf-8")
    commands = {
        **COMMANDS,
        "claimflow verify (gate stops)": [claimflow, "verify", NOT_WORTHY, "--json"],
        "claimflow verify (gate stops), runtime onnx": [
            claimflow,
            "verify",
            NOT_WORTHY,
            "--json",
            "-c",
            str(onnx_config),
        ],
    }
    walls: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, list[float]] = {name: [] for name in commands}
    inner: dict[str, list[tuple[float, float]]] = {}
    for command in commands.values():  # warm-up: page cache
        run(command)
    for _ in range(args.repeats):
        for name, command in commands.items():
            seconds, peak, out = run(command)
            walls[name].append(seconds)
            peaks[name].append(peak)
            if name.startswith("claimflow verify"):
                provenance = json.loads(out)["provenance"]
                node = provenance["node_seconds"]["check_worthiness"]
                inner.setdefault(name, []).append((provenance["total_seconds"], node))
    print(f"{args.repeats} fresh processes each, interleaved; {os.cpu_count()} cores (shared)")
    print()
    print("| command | median wall s | min | max | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for name in commands:
        w, peak = walls[name], statistics.median(peaks[name])
        print(f"| {name} | {statistics.median(w):.2f} | {min(w):.2f} | {max(w):.2f} | {peak:.0f} |")
    print()
    for name, runs in inner.items():
        total, gate = statistics.median(t for t, _ in runs), statistics.median(g for _, g in runs)
        print(f"{name}: verify's own total_seconds (median) {total:.2f} s, of which the gate node {gate:.2f} s")


if __name__ == "__main__":
    main()

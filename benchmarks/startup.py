"""Start-up of `claimflow verify`: wall time to the first result when the gate stops, and what it is made of.

    .venv/bin/python benchmarks/startup.py [--repeats 5]

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
import time

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
    commands = {**COMMANDS, "claimflow verify (gate stops)": [claimflow, "verify", NOT_WORTHY, "--json"]}
    walls: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, list[float]] = {name: [] for name in commands}
    inner: list[tuple[float, float]] = []
    for command in commands.values():  # warm-up: page cache
        run(command)
    for _ in range(args.repeats):
        for name, command in commands.items():
            seconds, peak, out = run(command)
            walls[name].append(seconds)
            peaks[name].append(peak)
            if name.startswith("claimflow verify"):
                provenance = json.loads(out)["provenance"]
                inner.append((provenance["total_seconds"], provenance["node_seconds"]["check_worthiness"]))
    print(f"{args.repeats} fresh processes each, interleaved; {os.cpu_count()} cores (shared)")
    print()
    print("| command | median wall s | min | max | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for name in commands:
        w, peak = walls[name], statistics.median(peaks[name])
        print(f"| {name} | {statistics.median(w):.2f} | {min(w):.2f} | {max(w):.2f} | {peak:.0f} |")
    total = statistics.median(t for t, _ in inner)
    gate = statistics.median(g for _, g in inner)
    print()
    print(f"verify's own total_seconds (median): {total:.2f} s, of which the check_worthiness node {gate:.2f} s")


if __name__ == "__main__":
    main()

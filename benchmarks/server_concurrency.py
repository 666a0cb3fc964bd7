"""Throughput of the ``openai`` backend against a real llama.cpp server on loopback, by concurrency.

    .venv/bin/python benchmarks/server_concurrency.py --requests 32 --repeats 3 --concurrency 1,2,4,8

Starts ``python -m llama_cpp.server`` with SmolLM2-135M-Instruct (the model store's GGUF) on
127.0.0.1, then sends the same batch of ``--requests`` chat requests (short justification-like
generations of ``--max-tokens`` tokens at temperature 0, then as many label-scoring requests) through
one :class:`~claimflow.llm.openai_backend.OpenAIBackend` per concurrency limit. The limits run in
turns within each repeat; the medians are printed with the speed-up over concurrency 1, and the
answers are checked equal across limits. Pass ``--base-url`` to measure a server you started
yourself (a vLLM server, say) instead.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from claimflow.llm.base import GenRequest, Message, ScoreRequest
from claimflow.llm.openai_backend import OpenAIBackend
from claimflow.models.store import ModelStore

CLAIMS = [
    "Vitamin D supplements prevent severe covid-19.",
    "Masks reduce the spread of respiratory viruses indoors.",
    "Remdesivir shortens recovery time in hospitalised adults.",
    "Children rarely develop severe disease from SARS-CoV-2.",
]


def start_server(threads: int) -> tuple[subprocess.Popen[bytes], str]:
    model = ModelStore().resolve("smollm2-135m-instruct").path
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = Path(tempfile.mkdtemp(prefix="llama-server-")) / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "2048", "--logits_all", "true", "--n_threads", str(threads),
        "--n_threads_batch", str(threads), "--seed", "0",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2):
                return process, base_url
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit("the server did not start within 120 s")


def workload(n: int, max_tokens: int) -> tuple[list[GenRequest], list[ScoreRequest]]:
    gens, scores = [], []
    for i in range(n):
        claim = CLAIMS[i % len(CLAIMS)]
        evidence = f"Study {i} reports results on this question."
        gens.append(
            GenRequest(
                (Message("user", f"Claim: {claim}\nEvidence: {evidence}\nWrite one sentence on whether it supports."),),
                max_tokens=max_tokens,
                temperature=0.0,
            )
        )
        scores.append(
            ScoreRequest((Message("user", f"Is this worth fact-checking? {claim} Answer Yes or No."),), ("Yes", "No"))
        )
    return gens, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="llama.cpp server threads")
    parser.add_argument("--base-url", default=None, help="an already running server (default: start llama.cpp)")
    parser.add_argument("--model", default="smollm2", help="the served model name (with --base-url)")
    args = parser.parse_args()

    limits = [int(c) for c in args.concurrency.split(",")]
    process = None
    base_url = args.base_url
    if base_url is None:
        process, base_url = start_server(args.threads)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed run stops its server too (finally)
    gens, scores = workload(args.requests, args.max_tokens)
    clients = {c: OpenAIBackend(args.model, base_url=base_url, max_concurrency=c, timeout_s=600) for c in limits}
    try:
        clients[limits[0]].generate(gens[:2])  # warm-up
        timings: dict[int, dict[str, list[float]]] = {c: {"generate": [], "score": []} for c in limits}
        answers: dict[int, list[str]] = {}
        for _ in range(args.repeats):
            for c in limits:
                t0 = time.perf_counter()
                out = clients[c].generate(gens)
                timings[c]["generate"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                clients[c].score(scores)
                timings[c]["score"].append(time.perf_counter() - t0)
                answers[c] = [g.text for g in out]
                print(
                    f"concurrency {c}: generate {timings[c]['generate'][-1]:.2f} s, "
                    f"score {timings[c]['score'][-1]:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        for client in clients.values():
            client.close()
        if process is not None:
            process.terminate()
            process.wait(timeout=30)

    where = "llama.cpp server (llama-cpp-python), SmolLM2-135M-Instruct Q4" if args.base_url is None else base_url
    print(f"{where}; {args.requests} generate ({args.max_tokens} tokens) + {args.requests} score requests a batch;")
    print(
        f"{args.repeats} repeats; machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print()
    print(
        "| concurrency | generate median s | generate req/s | x c=1 | score median s | score req/s | x c=1 "
        "| same answers |"
    )
    print("|---|---|---|---|---|---|---|---|")
    base_g = statistics.median(timings[limits[0]]["generate"])
    base_s = statistics.median(timings[limits[0]]["score"])
    for c in limits:
        g = statistics.median(timings[c]["generate"])
        s = statistics.median(timings[c]["score"])
        print(
            f"| {c} | {g:.2f} | {args.requests / g:.2f} | {base_g / g:.2f} | {s:.2f} | {args.requests / s:.2f} | "
            f"{base_s / s:.2f} | {answers[c] == answers[limits[0]]} |"
        )


if __name__ == "__main__":
    main()

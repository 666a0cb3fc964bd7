"""A real llama.cpp OpenAI-compatible server (``python -m llama_cpp.server``) for the integration tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from claimflow.errors import ModelNotFoundError
from claimflow.models.store import ModelStore

SERVER_MODEL = "smollm2-135m-instruct"
START_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:<port>/v1``) of a llama.cpp server running smollm2-135m-instruct.

    ``--logits_all true`` keeps every position's logits, which the server needs to answer
    ``logprobs`` (chat) / ``logprobs=k`` (completions) requests.
    """
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (pip install claimflow[local])")
    shared = os.environ.get("CLAIMFLOW_TEST_CACHE")
    cache = Path(shared) if shared else tmp_path_factory.getbasetemp() / "claimflow-cache"
    try:
        model_path = ModelStore(cache).resolve(SERVER_MODEL).path
    except ModelNotFoundError as exc:
        pytest.skip(str(exc))
    port = _free_port()
    threads = str(os.cpu_count() or 1)
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--logits_all", "true",
        "--n_threads", threads,
        "--n_threads_batch", threads,
        "--seed", "0",
    ]  # fmt: skip
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    base_url = f"http://127.0.0.1:{port}/v1"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                if process.poll() is not None:
                    output = log_path.read_text(errors="replace")[-4000:]
                    pytest.fail(f"llama.cpp server exited with {process.returncode}:\n{output}")
                try:
                    with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                        if response.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    output = log_path.read_text(errors="replace")[-4000:]
                    pytest.fail(f"llama.cpp server did not answer within {START_TIMEOUT_S:.0f} s:\n{output}")
                time.sleep(0.2)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

"""A batch against a misbehaving OpenAI-compatible server (a small real HTTP server on 127.0.0.1):
answers 500, hangs, sends truncated or non-JSON bodies, drops the connection, or dies mid-batch.

A passing fault is retried with backoff by the ``openai`` client (``max_retries``) and the batch
finishes as if nothing happened; a lasting one is a clear :class:`BackendError` subclass after the
retries, the finished lines stay written, and a rerun against a healthy server does only the rest.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.unit.test_openai_backend import chat_completion

from claimflow.batch import run_batch
from claimflow.config import PipelineConfig
from claimflow.errors import BackendError, BackendTimeoutError, BackendUnavailableError
from claimflow.verifier import Verifier

TOP = {"Yes": -0.2, "No": -1.8, "SUPPORT": -0.3, "REFUTE": -1.5, "NEUTRAL": -2.0, " true": -0.4, " false": -1.2}
TIMEOUT_S = 0.5
HANG_S = 2.0

Plan = Callable[[int], str]
"""Request number (1-based) -> behaviour: ok, 500, hang, truncate, notjson, drop, die."""


@dataclass
class Server:
    base_url: str
    requests: int = 0
    behaviours: list[str] = field(default_factory=list)


@contextmanager
def misbehaving(plan: Plan) -> Iterator[Server]:
    """A server on a free loopback port whose n-th request gets ``plan(n)``."""
    lock = threading.Lock()
    state = Server(base_url="")
    server: ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw)
            with lock:
                state.requests += 1
                behaviour = plan(state.requests)
                state.behaviours.append(behaviour)
            payload = chat_completion("Yes", [("Yes", TOP)]) if body.get("logprobs") else chat_completion("Because.")
            data = json.dumps(payload).encode()
            try:
                if behaviour == "ok":
                    self._send(200, data)
                elif behaviour == "500":
                    self._send(500, json.dumps({"error": {"message": "boom", "type": "server_error"}}).encode())
                elif behaviour == "notjson":
                    self._send(200, b"<html>502 Bad Gateway</html>")
                elif behaviour == "hang":
                    time.sleep(HANG_S)  # well past the client's timeout
                    self._send(200, data)
                elif behaviour == "truncate":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self._drop()
                elif behaviour in ("drop", "die"):
                    self._drop()
                    if behaviour == "die":
                        threading.Thread(target=_stop, daemon=True).start()
            except OSError:  # the client gave up first
                pass

        def _send(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _drop(self) -> None:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    stopped = threading.Event()

    def _stop() -> None:
        if not stopped.is_set():
            stopped.set()
            server.shutdown()
            server.server_close()  # the port refuses connections from now on

    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        _stop()
        thread.join(timeout=5)


def _verifier(base_url: str, monkeypatch: pytest.MonkeyPatch) -> Verifier:
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    backend = {"kind": "openai", "model": "m", "base_url": base_url, "max_retries": 2, "timeout_s": TIMEOUT_S}
    stages = {s: {"predictor": "prompt"} for s in ("check_worthiness", "evidence_stance", "veracity")}
    return Verifier(PipelineConfig.from_dict({"backends": {"default": backend}, **stages}))


def _items(n: int) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"c{i}", {"id": f"c{i}", "claim": f"Masks cut spread by {i} percent.", "evidence": ["A study.", "No effect."]})
        for i in range(n)
    ]


def _outcomes(path: Path) -> dict[str, Any]:
    """id -> the labels and probabilities of each stage (no timings, no server address)."""
    out: dict[str, Any] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        assert record["id"] not in out, f"{record['id']} written twice"
        result = record["result"]
        stances = [(s["label"], s["probabilities"]) for s in result["evidence_stances"]]
        out[record["id"]] = (result["check_worthiness"], result["veracity"], stances)
    return out


def _batch(base_url: str, n: int, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with _verifier(base_url, monkeypatch) as verifier:
        run_batch(verifier, _items(n), out, force=True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], int]:
    """The outcome of a fault-free 4-claim batch, and how many requests it took."""
    out = tmp_path_factory.mktemp("clean") / "out.jsonl"
    with pytest.MonkeyPatch.context() as patch, misbehaving(lambda _n: "ok") as server:
        _batch(server.base_url, 4, out, patch)
    return _outcomes(out), server.requests


@pytest.mark.parametrize("fault", ["500", "hang", "truncate", "drop"])
def test_a_passing_fault_is_retried_and_the_batch_finishes(
    fault: str, clean: tuple[dict[str, Any], int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected, requests = clean
    out = tmp_path / "out.jsonl"
    # two failures in a row on one call (max_retries=2: the third try answers), then one more later
    bad = {3, 4, requests - 1}
    with misbehaving(lambda n: fault if n in bad else "ok") as server:
        _batch(server.base_url, 4, out, monkeypatch)
    assert _outcomes(out) == expected
    assert server.requests == requests + len(bad)  # each failed try was tried again


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        ("500", BackendError, "answered HTTP 500"),
        ("hang", BackendTimeoutError, "did not answer within the timeout"),
        ("truncate", BackendUnavailableError, "cannot reach"),
        ("drop", BackendUnavailableError, "cannot reach"),
        ("notjson", BackendError, "not JSON"),
        ("die", BackendUnavailableError, "Is the server running"),
    ],
)
def test_a_lasting_fault_is_a_clear_backend_error_and_the_finished_lines_stay(
    fault: str,
    error: type[BackendError],
    message: str,
    clean: tuple[dict[str, Any], int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected, requests = clean
    out = tmp_path / "out.jsonl"
    with misbehaving(lambda _n: "ok") as server:  # an earlier run finished two claims
        _batch(server.base_url, 2, out, monkeypatch)
    broken_from = requests // 4 + 1  # the rerun does the other two claims; the server breaks during the first
    with (
        misbehaving(lambda n: "ok" if n < broken_from else fault) as server,
        pytest.raises(error, match=message),
    ):
        _batch(server.base_url, 4, out, monkeypatch)
    if fault not in ("notjson", "die"):  # what the client retries: one try + max_retries, then the error
        assert server.behaviours.count(fault) == 3
    assert set(_outcomes(out)) >= {"c0", "c1"}  # the finished lines stay, each once
    with misbehaving(lambda _n: "ok") as server:  # the server is back: the rerun does only the rest
        _batch(server.base_url, 4, out, monkeypatch)
    assert _outcomes(out) == expected

"""``claimflow serve`` for real: the command started as a process, uvicorn listening on loopback, the
API answered over HTTP (plain and streamed), Ctrl+C stopping it cleanly. On the fake pipeline, and
on the real default pipeline (SmolLM2 through llama.cpp and the shipped encoders)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uvicorn", reason="needs the [serve] extra (pip install 'claimflow[serve]')")

import httpx
from tests.conftest import FIXTURES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180.0
CLAIM = "The Eiffel Tower is in Berlin."
EVIDENCE = [
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France.",
    "It was designed by Gustave Eiffel's company and completed in 1889.",
    "Berlin's tallest structure is the Fernsehturm, a television tower.",
]


@contextmanager
def serving(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    """``claimflow serve --port 0 ARGS`` as a process: (its base URL, the process, its stderr log)."""
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "claimflow.cli", "serve", "--port", "0", "--db", str(tmp_path / "runs.sqlite")]
    with log.open("w", encoding="utf-8") as sink:
        environment = {**os.environ, **(env or {})}
        process = subprocess.Popen(
            [*command, *args], cwd=tmp_path, stdout=sink, stderr=sink, text=True, env=environment
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            url = None
            while url is None:
                found = re.search(r"claimflow serve: (http://127\.0\.0\.1:\d+)/", log.read_text(encoding="utf-8"))
                if found:
                    url = found.group(1)
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"claimflow serve did not start (exit {process.poll()}):\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
            yield url, process, log
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


def stream_events(client: httpx.Client, url: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any], float]]:
    """The events of one streamed verification, each with the time it arrived."""
    out: list[tuple[str, dict[str, Any], float]] = []
    with client.stream("POST", url, json=body, timeout=600) as response:
        assert response.status_code == 200, response.read()
        kind = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind is not None:
                out.append((kind, json.loads(line[5:]), time.monotonic()))
    return out


def test_the_command_serves_the_api_on_loopback_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    with serving(tmp_path, "--config", str(FIXTURES / "fake.yaml")) as (url, process, log):
        with httpx.Client(base_url=url, timeout=60) as client:
            health = client.get("/v1/health").json()
            assert health["status"] == "ok" and health["recording"] is True
            result = client.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE}).json()
            assert result["status"] == "verified" and len(result["evidence_stances"]) == 3
            got = stream_events(client, "/v1/verify:stream", {"claim": CLAIM, "evidence": EVIDENCE})
            assert [k for k, _, _ in got] == ["start", "node", "node", "node", "node", "result"]
            assert [r["run_id"] for r in client.get("/v1/runs").json()] == [got[-1][1]["run_id"], result["run_id"]]
            assert client.post("/v1/verify", json={"claim": ""}).status_code == 422
            assert client.get("/docs").status_code == 200 and client.get("/").status_code == 200
            assert client.get("/v1/health", headers={"host": "attacker.example"}).status_code == 400
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    assert "Traceback" not in log.read_text(encoding="utf-8")


def test_a_token_protects_the_real_server(tmp_path: Path) -> None:
    with (
        serving(tmp_path, "--config", str(FIXTURES / "fake.yaml"), "--token", "a-test-token-123") as (url, _, log),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        assert "?token=a-test-token-123" in log.read_text(encoding="utf-8")
        assert client.get("/v1/health").status_code == 401
        headers = {"Authorization": "Bearer a-test-token-123"}
        assert client.get("/v1/health", headers=headers).status_code == 200


# --- the real default pipeline ------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("serve-real")
    # the session cache the other real-model tests share (tests/conftest.py)
    cache = os.environ.get("CLAIMFLOW_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "claimflow-cache")
    with serving(folder, env={"CLAIMFLOW_CACHE_DIR": cache}) as (url, _, _):
        yield url


def test_the_default_pipeline_verifies_over_http(real_server: str) -> None:
    with httpx.Client(base_url=real_server, timeout=600) as client:
        response = client.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE})
        assert response.status_code == 200, response.text
        result = response.json()
        # a verdict whatever check-worthiness says (gate: annotate), with the shipped predictors' provenance
        assert result["status"] == "verified"
        assert result["veracity"]["label"] in {"SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"}
        assert result["check_worthiness"]["label"] in {"Yes", "No"}
        prompts = result["provenance"]["prompts"]
        assert prompts["check_worthiness"].startswith("encoder:checkworthiness-encoder#")
        assert prompts["evidence_stance"].startswith("encoder:evidence-multitask#")
        assert result["provenance"]["models"]["justify"]["model"].startswith("smollm2")
        assert all(s["relevance"] is not None for s in result["evidence_stances"])
        # the run is recorded: its trace holds the justification prompts SmolLM2 was given
        detail = client.get(f"/v1/runs/{result['run_id']}").json()
        justify = next(t for t in detail["trace"] if t["node"] == "justify")
        assert justify["calls"] and justify["calls"][0]["kind"] == "generate"
        assert CLAIM in justify["calls"][0]["messages"][-1]["content"]


def test_the_default_pipeline_streams_node_by_node(real_server: str) -> None:
    with httpx.Client(base_url=real_server, timeout=600) as client:
        got = stream_events(client, "/v1/verify:stream", {"claim": CLAIM, "evidence": EVIDENCE})
        assert [k for k, _, _ in got] == ["start", "node", "node", "node", "node", "result"]
        nodes = [d["node"] for k, d, _ in got if k == "node"]
        assert nodes == ["check_worthiness", "evidence_stance", "justify", "veracity"]
        # the events arrive as the nodes finish, not all at the end: justify (generation) takes a while
        arrived = {d["node"]: (t, d["seconds"]) for k, d, t in got if k == "node"}
        gap = arrived["justify"][0] - arrived["evidence_stance"][0]
        assert gap >= 0.5 * arrived["justify"][1] > 0
        assert got[-1][1]["status"] == "verified"

"""The HTTP API of ``claimflow serve`` through FastAPI's test client, on the fake backend: verify,
batch, the event stream, the error mapping, the size and concurrency limits, the token, recorded
runs and replay, A/B reports, the OpenAPI documentation."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="needs the [serve] extra (pip install 'claimflow[serve]')")

from fastapi.testclient import TestClient
from tests.conftest import PROMPT_ONLY, keyword_scorer, prefer, prompt_config

from claimflow.errors import BackendError, BackendUnavailableError
from claimflow.evals.ab import ABSpec, run_ab
from claimflow.evals.store import RunStore
from claimflow.llm.base import GenRequest, ScoreRequest
from claimflow.llm.fake import FakeBackend
from claimflow.serve import ServeLimits, create_app
from claimflow.types import VerificationResult

CLAIM = "Vitamin D supplements prevent COVID-19 infection in adults."
EVIDENCE = [
    "A randomized trial found no reduction in infections among those given vitamin D.",
    "People with low vitamin D levels had higher rates of COVID-19.",
    "Vitamin D is produced in the skin when it is exposed to sunlight.",
]


def fake_backend(**kw: Any) -> FakeBackend:
    kw.setdefault("score_fn", keyword_scorer)
    kw.setdefault("generate_fn", lambda r: "Because " + r.messages[-1].content.split("Evidence:")[-1].strip()[:80])
    return FakeBackend(**kw)


def make_ab_store(path: Path, n: int = 30) -> Path:
    """An A/B store with one finished check-worthiness run, ``t``: two templates on the fake backend,
    the long one right on every item, the short one always saying No."""
    data = path.parent / "claims.jsonl"
    rows = []
    for i in range(n):
        worthy = i % 3 == 0
        text = f"The deficit grew by {i} billion dollars." if worthy else f"I thank everyone here tonight, number {i}."
        rows.append(
            {
                "id": f"s{i}",
                "claim": text,
                "evidence": [],
                "label": "Yes" if worthy else "No",
                "split": "dev",
                "source": "test",
            }
        )
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")

    def smart_or_dumb(request: ScoreRequest) -> dict[str, float]:
        text = request.messages[-1].content
        if "auxiliary questions" in text:
            yes = 0.9 if any(c.isdigit() for c in text.split("Text:")[-1].split("number")[0]) else 0.1
        else:
            yes = 0.2
        return {
            c: math.log(yes if c.lower() == "yes" else 1 - yes if c.lower() == "no" else 1e-9)
            for c in request.candidates
        }

    spec = ABSpec.model_validate(
        {
            "name": "t",
            "stage": "check_worthiness",
            "dataset": {"path": str(data)},
            "backends": {"default": {"kind": "fake"}},
            "variants": [
                {"name": "long", "template": "checkworthiness_long@1"},
                {"name": "short", "template": "checkworthiness_short@1"},
            ],
            "baseline": "short",
            "bootstrap_resamples": 200,
        }
    )
    store = RunStore(path)
    try:
        run_ab(spec, store, backends={"default": FakeBackend(score_fn=smart_or_dumb)})
    finally:
        store.close()
    return path


def client_for(tmp_path: Path, backend: FakeBackend | None = None, **kw: Any) -> TestClient:
    kw.setdefault("runs_db", tmp_path / "runs.sqlite")
    config = kw.pop("config", PROMPT_ONLY)
    app = create_app(config, backends={"default": backend or fake_backend()}, **kw)
    return TestClient(app)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with client_for(tmp_path, evals_store=tmp_path / "evals.sqlite") as c:
        yield c


# --- verify ---------------------------------------------------------------------------------------


def test_verify_answers_the_verification_result_and_records_the_run(client: TestClient) -> None:
    response = client.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE})
    assert response.status_code == 200, response.text
    result = VerificationResult.model_validate(response.json())
    assert result.status == "verified" and result.veracity is not None
    assert [s.label for s in result.evidence_stances] == ["REFUTE", "SUPPORT", "NEUTRAL"]
    assert result.run_id is not None
    runs = client.get("/v1/runs").json()
    assert [r["run_id"] for r in runs] == [result.run_id] and runs[0]["verdict"] == result.veracity.label
    detail = client.get(f"/v1/runs/{result.run_id}").json()
    assert [t["node"] for t in detail["trace"]] == ["check_worthiness", "evidence_stance", "justify", "veracity"]
    assert "Sentence to classify:" in detail["trace"][1]["calls"][0]["messages"][-1]["content"]
    report = client.get(f"/v1/runs/{result.run_id}/report")
    assert report.status_code == 200 and 'id="node-justify"' in report.text


def test_per_request_stages_gate_and_force(tmp_path: Path) -> None:
    with client_for(tmp_path, fake_backend(score_fn=prefer("No"))) as c:
        annotate = c.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE}).json()
        stop = c.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE, "gate": "stop"}).json()
        forced = c.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE, "gate": "stop", "force": True}).json()
        triage = c.post("/v1/verify", json={"claim": CLAIM, "stages": ["check_worthiness"]}).json()
    assert annotate["status"] == "verified" and annotate["check_worthiness"]["label"] == "No"
    assert stop["status"] == "not_check_worthy" and stop["stages_run"] == ["check_worthiness"]
    assert forced["status"] == "verified"
    assert triage["status"] == "not_check_worthy" and triage["stages_run"] == ["check_worthiness"]


def test_batch_checks_every_item_first_then_verifies_in_order(client: TestClient) -> None:
    bad = client.post("/v1/verify:batch", json={"items": [{"claim": CLAIM, "evidence": EVIDENCE}, {"claim": "  "}]})
    assert bad.status_code == 422 and bad.json()["error"] == "EmptyClaimError"
    assert bad.json()["message"].startswith("items[1]: ")
    assert client.get("/v1/runs").json() == []  # nothing ran
    good = client.post(
        "/v1/verify:batch", json={"items": [{"claim": CLAIM, "evidence": EVIDENCE}, {"claim": "Another claim."}]}
    )
    assert good.status_code == 200, good.text
    results = good.json()["results"]
    assert [r["status"] for r in results] == ["verified", "no_evidence"]
    assert len(client.get("/v1/runs").json()) == 2


# --- the event stream ---------------------------------------------------------------------------


def events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in text.strip().split("\n\n"):
        lines = [line for line in frame.split("\n") if not line.startswith(":")]
        if not lines:
            continue
        kind = next(line[6:].strip() for line in lines if line.startswith("event:"))
        data = json.loads("\n".join(line[5:].strip() for line in lines if line.startswith("data:")))
        out.append((kind, data))
    return out


def test_the_stream_sends_start_one_event_per_node_then_the_result(client: TestClient) -> None:
    with client.stream("POST", "/v1/verify:stream", json={"claim": CLAIM, "evidence": EVIDENCE}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    got = events(text)
    assert [k for k, _ in got] == ["start", "node", "node", "node", "node", "result"]
    start, *nodes, result = (d for _, d in got)
    assert start["run_id"] == result["run_id"] is not None
    assert [n["node"] for n in nodes] == ["check_worthiness", "evidence_stance", "justify", "veracity"]
    assert nodes[0]["update"]["gate"] == "pass" and nodes[0]["summary"].startswith("✓ check_worthiness")
    assert all(n["seconds"] >= 0 and "trace" not in n["update"] for n in nodes)
    assert VerificationResult.model_validate(result).status == "verified"


def test_the_stream_answers_input_errors_before_it_starts_and_failures_in_it(tmp_path: Path) -> None:
    def broken(request: GenRequest) -> str:
        raise BackendError("the model crashed")

    with client_for(tmp_path, fake_backend(generate_fn=broken)) as c:
        bad = c.post("/v1/verify:stream", json={"claim": "", "evidence": EVIDENCE})
        assert bad.status_code == 422 and bad.json()["error"] == "EmptyClaimError"
        with c.stream("POST", "/v1/verify:stream", json={"claim": CLAIM, "evidence": EVIDENCE}) as response:
            got = events("".join(response.iter_text()))
    assert [k for k, _ in got] == ["start", "node", "node", "error"]
    assert got[-1][1] == {"error": "BackendError", "message": "the model crashed", "status": 500}
    assert c.get("/v1/health").json()["in_flight"] == 0


# --- errors and limits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "error", "message"),
    [
        ({"claim": "   "}, 422, "EmptyClaimError", "the claim is empty"),
        ({"claim": "x" * 3000}, 422, "ClaimTooLongError", "max_claim_chars=2000"),
        ({"claim": "x", "evidence": "one string"}, 422, "RequestValidationError", "body.evidence"),
        ({"claim": "x", "evidence": [1, 2]}, 422, "RequestValidationError", "body.evidence.0"),
        ({"evidence": []}, 422, "RequestValidationError", "body.claim: Field required"),
        ({"claim": "x", "colour": "red"}, 422, "RequestValidationError", "body.colour: Extra inputs"),
        ({"claim": "x", "stages": ["nope"]}, 422, "RequestValidationError", "body.stages.0"),
        ({"claim": "x", "gate": "maybe"}, 422, "RequestValidationError", "body.gate"),
        ({"claim": "x", "stages": ["justify"]}, 400, "GraphBuildError", "'justify' needs 'evidence_stance'"),
        ({"claim": "x", "evidence": ["e"] * 11}, 413, "RequestTooLargeError", "more than this server's limit of 10"),
    ],
)
def test_input_errors_are_4xx_with_the_claimflow_message(
    tmp_path: Path, body: dict[str, Any], status: int, error: str, message: str
) -> None:
    with client_for(tmp_path, limits=ServeLimits(max_evidence=10)) as c:
        for path in ("/v1/verify", "/v1/verify:stream"):
            response = c.post(path, json=body)
            assert response.status_code == status, response.text
            assert response.json()["error"] == error and message in response.json()["message"]
        assert c.get("/v1/runs").json() == []


def test_a_body_that_is_not_json_or_too_large_is_refused(tmp_path: Path) -> None:
    with client_for(tmp_path, limits=ServeLimits(max_body_bytes=2048, max_batch=2)) as c:
        text = c.post("/v1/verify", content=json.dumps({"claim": "x"}), headers={"content-type": "text/plain"})
        assert text.status_code == 422  # a page of another site cannot post a "simple" request as JSON
        big = {"claim": "x", "evidence": ["A sentence of evidence."] * 200}
        declared = c.post("/v1/verify", json=big)
        assert declared.status_code == 413 and "limit of 2048 bytes" in declared.json()["message"]

        def chunks() -> Iterator[bytes]:
            payload = json.dumps(big).encode()
            for i in range(0, len(payload), 500):
                yield payload[i : i + 500]

        chunked = c.post("/v1/verify", content=chunks(), headers={"content-type": "application/json"})
        assert chunked.status_code == 413 and chunked.json()["error"] == "RequestTooLargeError"
        batch = c.post("/v1/verify:batch", json={"items": [{"claim": "a"}] * 3})
        assert batch.status_code == 413 and "limit of 2 a request" in batch.json()["message"]


def test_backend_failures_are_5xx(tmp_path: Path) -> None:
    def down(request: ScoreRequest) -> dict[str, float]:
        raise BackendUnavailableError("the server at http://127.0.0.1:1 does not answer")

    def crash(request: ScoreRequest) -> dict[str, float]:
        raise RuntimeError("an unexpected bug")

    with client_for(tmp_path, fake_backend(score_fn=down)) as c:
        response = c.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE})
        assert response.status_code == 503 and response.json()["error"] == "BackendUnavailableError"
        assert response.headers["retry-after"] == "5"
    with client_for(tmp_path / "b", fake_backend(score_fn=crash), runs_db=None) as c:
        c_raise = TestClient(c.app, raise_server_exceptions=False)
        response = c_raise.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE})
        assert response.status_code == 500 and response.json() == {
            "error": "RuntimeError",
            "message": "an unexpected bug",
        }


def test_unknown_paths_and_runs_are_404(client: TestClient) -> None:
    assert client.get("/v1/nope").json() == {"error": "NotFound", "message": "Not Found"}
    missing = client.get("/v1/runs/abc123")
    assert missing.status_code == 404 and "no run 'abc123'" in missing.json()["message"]
    page = client.get("/runs/abc123")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "no run" in page.text and 'id="error-message"' in page.text


# --- concurrency ------------------------------------------------------------------------------------


def blocking_backend(release: threading.Event, entered: threading.Event) -> FakeBackend:
    """Generation for a claim starting with 'slow' waits until ``release`` is set."""

    def generate(request: GenRequest) -> str:
        if "slow" in request.messages[-1].content:
            entered.set()
            assert release.wait(20)
        return "Because."

    return fake_backend(generate_fn=generate)


def test_a_full_server_answers_503_at_once_and_recovers(tmp_path: Path) -> None:
    release, entered = threading.Event(), threading.Event()
    backend = blocking_backend(release, entered)
    with client_for(tmp_path, backend, limits=ServeLimits(concurrency=1, queue=0)) as c:
        slow: dict[str, Any] = {}
        worker = threading.Thread(
            target=lambda: slow.update(r=c.post("/v1/verify", json={"claim": "slow claim", "evidence": EVIDENCE}))
        )
        worker.start()
        assert entered.wait(20)
        assert c.get("/v1/health").json()["in_flight"] == 1
        start = time.monotonic()
        busy = c.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE})
        assert busy.status_code == 503 and busy.json()["error"] == "ServerBusyError"
        assert busy.headers["retry-after"] == "5" and time.monotonic() - start < 5
        assert c.post("/v1/verify:stream", json={"claim": CLAIM, "evidence": EVIDENCE}).status_code == 503
        release.set()
        worker.join(20)
        assert slow["r"].status_code == 200
        assert c.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE}).status_code == 200
        assert c.get("/v1/health").json()["in_flight"] == 0


def test_requests_queue_for_the_slot_and_a_second_slot_runs_alongside(tmp_path: Path) -> None:
    release, entered = threading.Event(), threading.Event()
    backend = blocking_backend(release, entered)
    with client_for(tmp_path, backend, limits=ServeLimits(concurrency=2, queue=1)) as c:
        answers: list[Any] = []
        slow = threading.Thread(
            target=lambda: answers.append(c.post("/v1/verify", json={"claim": "slow one", "evidence": EVIDENCE}))
        )
        slow.start()
        assert entered.wait(20)
        # the second slot serves a request while the first is busy
        quick = c.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE})
        assert quick.status_code == 200
        assert not answers
        release.set()
        slow.join(20)
        assert answers[0].status_code == 200


# --- the token and the host -------------------------------------------------------------------------


def test_a_token_protects_every_route(tmp_path: Path) -> None:
    with client_for(tmp_path, token="s3cret-token") as c:
        assert c.get("/v1/health").status_code == 401
        assert c.get("/v1/health").json()["error"] == "Unauthorized"
        assert c.get("/v1/health", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
        assert c.get("/v1/health", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        page = c.get("/runs")
        assert page.status_code == 401 and "needs its token" in page.text
        assert c.get("/openapi.json").status_code == 401
        entry = c.get("/runs?token=s3cret-token&limit=5", follow_redirects=False)
        assert entry.status_code == 303 and entry.headers["location"] == "/runs?limit=5"
        assert "HttpOnly" in entry.headers["set-cookie"] and "SameSite=Strict" in entry.headers["set-cookie"]
        assert c.get("/runs").status_code == 200  # the cookie from the redirect
        assert c.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE}).status_code == 200


def test_a_loopback_server_refuses_other_host_names(tmp_path: Path) -> None:
    with client_for(tmp_path, allowed_hosts=["127.0.0.1", "localhost"]) as c:
        assert c.get("/v1/health", headers={"host": "evil.example:8000"}).status_code == 400
        assert c.get("/v1/health", headers={"host": "127.0.0.1:8000"}).status_code == 200


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/", "/v1/health", "/static/app.js"):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
    assert "content-security-policy" not in client.get("/docs/swagger").headers  # its script is on a CDN


# --- replay ------------------------------------------------------------------------------------------


def test_replay_forks_a_run_and_reports_what_changed(client: TestClient) -> None:
    run_id = client.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE}).json()["run_id"]
    response = client.post(
        f"/v1/runs/{run_id}/replay",
        json={"from_node": "veracity", "prompts": {"veracity": "veracity_justifications_rawfc@1"}},
    )
    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["parent_run"] == run_id and outcome["from_node"] == "veracity"
    assert outcome["changes"] == ["prompt veracity=veracity_justifications_rawfc@1"]
    assert any(line.startswith("prompt veracity:") for line in outcome["diff"])
    child = client.get(f"/v1/runs/{outcome['run_id']}").json()
    assert child["run"]["parent_run"] == run_id
    edited = client.post(f"/v1/runs/{run_id}/replay", json={"edits": ["evidence_stances.2.label=REFUTE"]}).json()
    assert edited["from_node"] == "justify"
    bad = client.post(f"/v1/runs/{run_id}/replay", json={"from_node": "justify", "edits": ["nonsense=1"]})
    assert bad.status_code == 422 and "not a state key" in bad.json()["message"]
    unknown = client.post(f"/v1/runs/{run_id}/replay", json={"prompts": {"colour": "x@1"}})
    assert unknown.status_code == 422 and "unknown stage 'colour'" in unknown.json()["message"]
    assert client.post("/v1/runs/zzz/replay", json={}).status_code == 404


def test_a_server_that_does_not_record_has_no_runs_to_replay(tmp_path: Path) -> None:
    with client_for(tmp_path, record=False) as c:
        result = c.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE}).json()
        assert result["run_id"] is None
        assert c.get("/v1/runs").json() == []
        assert c.get("/v1/health").json()["recording"] is False


# --- the graph, the config, A/B runs, the docs ------------------------------------------------------


def test_graph_formats_and_config(client: TestClient) -> None:
    svg = client.get("/v1/graph")
    assert svg.headers["content-type"].startswith("image/svg+xml") and 'id="g-node-justify"' in svg.text
    assert "check_worthiness" in client.get("/v1/graph", params={"format": "mermaid"}).text
    assert client.get("/v1/graph", params={"format": "dot"}).text.startswith("digraph")
    assert client.get("/v1/graph", params={"format": "png"}).status_code == 422
    assert client.get("/v1/config").json()["check_worthiness"]["gate"] == "annotate"


def test_ab_runs_and_their_reports(tmp_path: Path) -> None:
    store = make_ab_store(tmp_path / "evals.sqlite")
    with client_for(tmp_path, evals_store=store) as c:
        (run,) = c.get("/v1/ab").json()
        assert run["run_id"] == "t" and run["variants"] == ["long", "short"] and run["baseline"] == "short"
        assert run["predictions"] == {"long": 30, "short": 30} and run["metric"] == "positive_f1"
        page = c.get("/v1/ab/report", params={"run": "t"})
        assert page.status_code == 200 and "id='metrics'" in page.text and "id='comparisons'" in page.text
        assert "data:image/png;base64," in page.text
        markdown = c.get("/v1/ab/report", params={"run": "t", "format": "markdown"})
        assert markdown.text.startswith("# A/B report: t") and "| long |" in markdown.text
        missing = c.get("/v1/ab/report", params={"run": "nope"})
        assert missing.status_code == 404 and "no A/B run 'nope'" in missing.json()["message"]
    with client_for(tmp_path / "none", evals_store=tmp_path / "none" / "evals.sqlite") as c:
        assert c.get("/v1/ab").json() == []
        assert not (tmp_path / "none" / "evals.sqlite").exists()  # reading never creates a store


def test_the_openapi_schema_documents_the_package_types(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert {"/v1/verify", "/v1/verify:batch", "/v1/verify:stream", "/v1/runs/{run_id}/replay"} <= set(paths)
    verify = paths["/v1/verify"]["post"]
    assert verify["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/VerifyRequest")
    ok = verify["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("/VerificationResult")
    assert verify["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    components = schema["components"]["schemas"]
    assert {"VerificationResult", "EvidenceStance", "LabelScores", "NodeTrace", "ErrorBody"} <= set(components)
    events = paths["/v1/verify:stream"]["post"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert [ref["$ref"].rsplit("/", 1)[-1] for ref in events["oneOf"]] == [
        "StartEvent",
        "NodeEvent",
        "VerificationResult",
        "ErrorBody",
    ]
    assert {"StartEvent", "NodeEvent"} <= set(components)
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert 'id="post-v1-verify"' in docs.text and 'id="schema-VerificationResult"' in docs.text
    assert "https://" not in docs.text.split("Swagger UI")[0]  # nothing fetched from the network


def test_the_pages_render(client: TestClient, tmp_path: Path) -> None:
    run_id = client.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE}).json()["run_id"]
    for path, marker in [
        ("/", 'id="verify-form"'),
        ("/graph", 'id="mermaid"'),
        ("/runs", f'data-run="{run_id}"'),
        (f"/runs/{run_id}", 'id="replay"'),
        ("/ab", 'id="no-ab-runs"'),
        ("/docs", 'id="endpoints"'),
    ]:
        page = client.get(path)
        assert page.status_code == 200 and marker in page.text, path
        assert page.headers["content-type"].startswith("text/html")
    assert client.get("/ab/report").status_code == 404


def test_the_result_fragment_shows_verdict_stances_and_the_path(client: TestClient) -> None:
    result = client.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE}).json()
    html = client.post("/ui/result", json=result).text
    assert 'id="verdict" class="verdict v-' in html and 'id="distribution"' in html
    assert html.count('class="evidence-row') == 3
    assert 'class="evidence-row stance-refute" data-index="0"' in html
    assert 'class="seg stance-support" data-label="SUPPORT"' in html
    assert 'class="node taken" id="g-node-veracity"' in html
    assert f'href="/runs/{result["run_id"]}"' in html
    script = CLAIM.replace("Vitamin", "<script>alert(1)</script>")
    escaped = client.post("/ui/result", json={**result, "claim": script}).text
    assert "<script>alert(1)</script>" not in escaped and "&lt;script&gt;" in escaped


def test_stopping_at_the_gate_is_reported_on_the_result(tmp_path: Path) -> None:
    config = prompt_config({"check_worthiness": {"gate": "stop"}})
    with client_for(tmp_path, fake_backend(score_fn=prefer("No")), config=config) as c:
        result = c.post("/v1/verify", json={"claim": CLAIM, "evidence": EVIDENCE}).json()
        html = c.post("/ui/result", json=result).text
    assert result["status"] == "not_check_worthy"
    assert "not check-worthy" in html and "stopped at the gate" in html

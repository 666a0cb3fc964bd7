"""The app of ``claimflow serve`` in headless Chromium (Debian's package, driven through Playwright):
submit the verify form and watch the result stream in, open a run's trace and replay it with another
prompt, open an A/B report, read the API reference. What is on each page is checked; screenshots are
kept as artifacts ($CLAIMFLOW_TEST_ARTIFACTS, else the test's tmp folder), never compared.

The server is a real uvicorn on loopback; its pipeline runs on the fake backend, since the point here
is the UI (tests/integration/test_serve_uvicorn.py runs the real models behind the same app)."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.browser import artifacts_dir, browser_page, chromium_path

pytest.importorskip("uvicorn", reason="needs the [serve] extra (pip install 'claimflow[serve]')")
pytest.importorskip("playwright.sync_api", reason="needs playwright (in the [dev] extra)")

import uvicorn
from tests.conftest import PROMPT_ONLY, keyword_scorer
from tests.unit.test_serve_api import make_ab_store

from claimflow.llm.base import GenRequest
from claimflow.llm.fake import FakeBackend
from claimflow.serve import create_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(chromium_path() is None, reason="Debian chromium is not installed (CI installs it)"),
]

CLAIM = "Vitamin D supplements prevent COVID-19 infection in adults."
EVIDENCE = [
    "A randomized trial found no reduction in infections among those given vitamin D.",
    "People with low vitamin D levels had higher rates of COVID-19.",
    "Vitamin D is produced in the skin when it is exposed to sunlight.",
]
TIMEOUT_MS = 30_000


@dataclass
class Server:
    url: str
    gate: threading.Event
    """Generation waits for it while set to block (the stream test holds justify open)."""
    hold: threading.Event


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("serve-browser")
    gate, hold = threading.Event(), threading.Event()

    def generate(request: GenRequest) -> str:
        if hold.is_set():
            assert gate.wait(30)
        return "Because " + request.messages[-1].content.split("Evidence:")[-1].strip()[:90]

    app = create_app(
        PROMPT_ONLY,
        backends={"default": FakeBackend(score_fn=keyword_scorer, generate_fn=generate)},
        runs_db=folder / "runs.sqlite",
        evals_store=make_ab_store(folder / "evals.sqlite"),
        allowed_hosts=["127.0.0.1", "localhost"],
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if uv.started:
            break
        threading.Event().wait(0.05)
    assert uv.started, "uvicorn did not start"
    try:
        yield Server(f"http://127.0.0.1:{port}", gate, hold)
    finally:
        gate.set()
        uv.should_exit = True
        thread.join(15)
        sock.close()


@pytest.fixture
def session() -> Iterator[tuple[Any, list[str]]]:
    with browser_page() as (tab, problems):
        yield tab, problems
        assert problems == [], problems  # no script error, no failed resource


@pytest.fixture
def page(session: tuple[Any, list[str]]) -> Any:
    return session[0]


@pytest.fixture
def problems(session: tuple[Any, list[str]]) -> list[str]:
    return session[1]


def shot(page: Any, tmp_path: Path, request: pytest.FixtureRequest, name: str) -> None:
    path = artifacts_dir(tmp_path, request.node.name) / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


def submit(page: Any, claim: str, evidence: list[str]) -> None:
    page.fill("#claim", claim)
    page.fill("#evidence", "\n".join(evidence))
    page.click("#verify-button")


def test_the_verify_form_streams_node_by_node_then_shows_the_result(
    server: Server, page: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    page.goto(server.url + "/")
    assert page.title() == "Verify a claim · claimflow"
    server.gate.clear()
    server.hold.set()  # justify waits: the first two nodes' events must already be on the page
    try:
        submit(page, CLAIM, EVIDENCE)
        page.wait_for_selector("#progress li[data-node=evidence_stance]", timeout=TIMEOUT_MS)
        assert page.locator("#result-card").count() == 0
        assert page.locator("#verify-button").is_disabled()
        assert "taken" in (page.get_attribute("#live-graph #g-node-evidence_stance", "class") or "")
        assert re.match(r"run [0-9a-f]{12}", page.inner_text("#run-id"))
        shot(page, tmp_path, request, "1-streaming")
    finally:
        server.hold.clear()
        server.gate.set()
    page.wait_for_selector("#result-card", timeout=TIMEOUT_MS)
    assert [li.get_attribute("data-node") for li in page.locator("#progress li[data-node]").all()] == [
        "check_worthiness",
        "evidence_stance",
        "justify",
        "veracity",
    ]
    assert page.inner_text("#status") == "verified"
    assert page.inner_text("#verdict").split()[0] in {"SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"}
    assert page.locator("#distribution tr").count() == 3
    labels = [row.get_attribute("data-label") for row in page.locator("#evidence-table tr.evidence-row").all()]
    assert labels == ["REFUTE", "SUPPORT", "NEUTRAL"]
    assert page.locator("#evidence-table tr.evidence-row").first.locator(".seg").count() == 3  # stance bar
    assert "check-worthy" in page.inner_text("#check-worthiness")
    assert page.locator("#justifications .just").count() == 2
    assert page.locator("#result-card svg .node.taken").count() == 6  # start, four stages, end
    assert page.is_enabled("#verify-button") and page.is_hidden("#live")
    shot(page, tmp_path, request, "2-result")


def test_an_input_error_is_shown_on_the_form(server: Server, page: Any, problems: list[str]) -> None:
    page.goto(server.url + "/")
    page.fill("#claim", "   ")  # passes the browser's "required", fails claimflow's check
    page.click("#verify-button")
    page.wait_for_selector("#error:not([hidden])", timeout=TIMEOUT_MS)
    assert page.inner_text("#error").startswith("EmptyClaimError: the claim is empty")
    assert [p for p in problems if "status of 422" not in p] == []  # the browser logs the 422 itself
    problems.clear()
    page.click("#load-example")
    assert page.input_value("#claim").startswith("Vitamin D supplements")
    assert len(page.input_value("#evidence").splitlines()) == 5


def test_a_runs_trace_node_by_node_and_replay_with_another_prompt(
    server: Server, page: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    page.goto(server.url + "/")
    submit(page, CLAIM, EVIDENCE)
    page.wait_for_selector("#run-link", timeout=TIMEOUT_MS)
    run_id = page.inner_text("#run-link")
    page.click("#run-link")
    page.wait_for_selector("iframe#report[data-loaded=true]", timeout=TIMEOUT_MS)
    assert page.title() == f"Run {run_id} · claimflow"
    report = page.frame_locator("iframe#report")
    for node in ("check_worthiness", "evidence_stance", "justify", "veracity"):
        assert report.locator(f"#node-{node}").count() == 1
    assert "Sentence to classify:" in report.locator("#node-evidence_stance").inner_text()
    assert report.locator("#node-evidence_stance .logprobs").count() >= 1  # the scores per candidate
    assert report.locator("#node-justify .msg-user").count() >= 1  # the rendered prompt
    assert page.evaluate("document.querySelector('iframe#report').offsetHeight") > 1500  # grown to fit
    shot(page, tmp_path, request, "1-trace")

    page.fill("#replay [name=prompts]", "veracity=veracity_justifications_rawfc@1")
    page.click("#replay button[data-from=veracity]")
    page.wait_for_url(re.compile(r"/runs/(?!" + run_id + r")[0-9a-f]{12}$"), timeout=TIMEOUT_MS)
    page.wait_for_selector("#lineage", timeout=TIMEOUT_MS)
    lineage = page.inner_text("#lineage")
    assert f"Replay of run {run_id} from veracity" in lineage
    assert "prompt veracity=veracity_justifications_rawfc@1" in lineage
    assert "prompt veracity: veracity_justifications@1#" in page.inner_text("#diff")
    page.wait_for_selector("iframe#report[data-loaded=true]", timeout=TIMEOUT_MS)
    inherited = page.frame_locator("iframe#report").locator(".node-panel.inherited")
    assert inherited.count() == 3  # the nodes before veracity were copied, not re-run
    shot(page, tmp_path, request, "2-replay")

    page.click(f"#lineage a[href='/runs/{run_id}']")
    page.wait_for_selector("#replays", timeout=TIMEOUT_MS)
    page.goto(server.url + "/runs")
    assert page.locator(f"#runs tr[data-run='{run_id}']").count() == 1
    assert "replay of" in page.inner_text("#runs")


def test_an_ab_report_with_metrics_tests_confusions_and_calibration(
    server: Server, page: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    page.goto(server.url + "/ab")
    row = page.locator("#ab-runs tr[data-run=t]")
    assert "long" in row.inner_text() and "(baseline)" in row.inner_text()
    row.locator("input[type=checkbox]").check()
    page.click("#ab-form button[type=submit]")
    page.wait_for_selector("iframe#report[data-loaded=true]", timeout=TIMEOUT_MS)
    assert page.url.endswith("/ab/report?run=t")
    report = page.frame_locator("iframe#report")
    metrics = report.locator("#metrics").inner_text()
    assert "long" in metrics and "short" in metrics and "95% CI" in metrics
    comparisons = report.locator("#comparisons").inner_text()
    assert "p (McNemar)" in comparisons and "p (Holm)" in comparisons
    assert report.locator("table.confusion").count() == 2
    assert report.locator("img[alt^=calibration]").count() == 2
    assert report.locator("#disagreements tr").count() > 1
    shot(page, tmp_path, request, "ab-report")


def test_the_api_reference_and_the_graph(
    server: Server, page: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    page.goto(server.url + "/docs")
    assert page.locator("#post-v1-verify").count() == 1 and page.locator("#post-v1-verify-stream").count() == 1
    page.click("#post-v1-verify a[href='#schema-VerifyRequest']")
    assert page.url.endswith("#schema-VerifyRequest")
    fields = page.locator("#schema-VerifyRequest").inner_text()
    for field in ("claim", "evidence", "force", "stages", "gate"):
        assert field in fields
    shot(page, tmp_path, request, "docs")
    page.goto(server.url + "/graph")
    assert page.locator("#graph svg .node").count() == 6
    assert "check_worthiness" in (page.text_content("#mermaid") or "")


def test_a_token_url_lets_the_browser_in(tmp_path: Path) -> None:
    app = create_app(
        PROMPT_ONLY, backends={"default": FakeBackend(score_fn=keyword_scorer)}, runs_db=None, token="browser-token"
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if uv.started:
                break
            threading.Event().wait(0.05)
        with browser_page() as (page, _problems):
            page.goto(f"http://127.0.0.1:{port}/runs")
            assert "needs its token" in page.inner_text("body")
            page.goto(f"http://127.0.0.1:{port}/?token=browser-token")
            assert page.url == f"http://127.0.0.1:{port}/"  # the token left the address bar
            submit(page, CLAIM, EVIDENCE)
            page.wait_for_selector("#result-card", timeout=TIMEOUT_MS)  # the script's requests carry the cookie
            assert page.inner_text("#status") == "verified"
    finally:
        uv.should_exit = True
        thread.join(15)
        sock.close()

"""`claimflow verify --record/--report`, `runs`, `trace`, `replay`, `report` on the fake backend;
the HTML report's content; the langgraph.json factory."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from tests.conftest import FIXTURES, PROMPT_ONLY
from typer.testing import CliRunner

from claimflow import Verifier
from claimflow.cli.main import app
from claimflow.debug.history import report_for_traced
from claimflow.debug.report_html import render_report
from claimflow.llm.fake import FakeBackend

ROOT = Path(__file__).resolve().parents[2]
FAKE = str(FIXTURES / "fake.yaml")
runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs.sqlite"
    monkeypatch.setenv("CLAIMFLOW_RUNS_DB", str(path))
    return path


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_record_then_runs_trace_replay_report(db: Path, tmp_path: Path) -> None:
    recorded = runner.invoke(app, ["verify", "--example", "-c", FAKE, "--force", "--record", "--json"])
    assert recorded.exit_code == 0, recorded.output
    run_id = json.loads(recorded.stdout)["run_id"]
    assert run_id and f"claimflow trace {run_id}" in recorded.stderr and db.exists()

    listing = invoke("runs")
    assert run_id in listing and "SUPPORTED" in listing
    rows = [json.loads(line) for line in invoke("runs", "--json").splitlines()]
    assert rows[0]["run_id"] == run_id and rows[0]["verdict"] == "SUPPORTED"

    text = invoke("trace", run_id[:6])
    assert "state history (6 checkpoints" in text and "Sentence to classify:" in text and "raw log-probs" in text
    data = json.loads(invoke("trace", "last", "--json", "--node", "veracity"))
    assert [t["node"] for t in data["trace"]] == ["veracity"]
    assert data["trace"][0]["calls"][0]["assistant_prefix"] == "Claim Veracity:"
    assert [h["next"] for h in data["history"]][-1] == []

    shown = invoke("replay", run_id, "--set", "evidence_stances.0.label=REFUTE", "--report", str(tmp_path / "r.html"))
    assert f"of run {run_id} from justify" in shown and "evidence[0]: SUPPORT" in shown
    assert "refute justification:" in shown and (tmp_path / "r.html").exists()
    replayed = json.loads(invoke("replay", run_id, "--prompt", "veracity=veracity_justifications_rawfc@1", "--json"))
    assert replayed["from_node"] == "veracity" and replayed["result"]["veracity"]["label"] in {"true", "false", "half"}
    assert f"(replay of {run_id} from veracity)" in invoke("runs")

    page = tmp_path / "report.html"
    runner.invoke(app, ["report", run_id, "-o", str(page)])
    html = page.read_text(encoding="utf-8")
    assert html.count('class="node-panel"') == 4 and 'id="evidence-table"' in html


def test_debug_commands_explain_a_missing_database(tmp_path: Path) -> None:
    result = runner.invoke(app, ["trace", "last", "--db", str(tmp_path / "none.sqlite")])
    assert result.exit_code == 2 and "no runs database" in result.stderr and "--record" in result.stderr
    assert not (tmp_path / "none.sqlite").exists()


def test_verify_report_without_recording(tmp_path: Path) -> None:
    page = tmp_path / "out" / "why.html"
    result = runner.invoke(app, ["verify", "--example", "-c", FAKE, "--force", "--report", str(page)])
    assert result.exit_code == 0, result.output
    assert page.exists() and "run " not in result.stderr.split("report:")[0]


def test_the_report_escapes_text_and_colours_stances(fake: FakeBackend) -> None:
    verifier = Verifier(PROMPT_ONLY, backends={"default": fake})
    claim = "<script>alert('x')</script> cures colds."
    evidence = [
        "A trial found no benefit at all.",
        "Patients felt better <b>quickly</b>.",
        "It is made in the skin under sunlight.",
    ]
    run = verifier.run(claim, evidence)
    html = report_for_traced(verifier, run)
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>quickly" not in html
    assert 'class="evidence stance-refute" data-index="0" data-label="REFUTE"' in html
    assert 'class="evidence stance-support" data-index="1"' in html
    assert 'class="evidence stance-neutral" data-index="2"' in html
    assert [f'id="node-{n}"' in html for n in ("check_worthiness", "evidence_stance", "justify", "veracity")] == [
        True
    ] * 4
    assert "raw log-prob" in html and "Claim Veracity:" in html and 'id="verdict" class="verdict v-REFUTED"' in html


def test_report_of_a_run_stopped_at_the_gate_greys_the_rest() -> None:
    from tests.conftest import prefer, prompt_config

    stop = prompt_config({"check_worthiness": {"gate": "stop"}})  # the default, annotate, runs on
    verifier = Verifier(stop, backends={"default": FakeBackend(score_fn=prefer("No"))})
    run = verifier.run("A claim.", ["Some evidence."])
    html = render_report(drawable=verifier.graph.get_graph(), state=run.state, result=run.result)
    assert 'class="node skipped" id="g-node-veracity"' in html
    assert 'class="edge conditional taken" id="g-edge-check_worthiness--__end__"' in html
    assert html.count('class="node-panel"') == 1


def _load_factory() -> object:
    config = json.loads((ROOT / "langgraph.json").read_text(encoding="utf-8"))
    path, name = config["graphs"]["claimflow"].rsplit(":", 1)
    spec = importlib.util.spec_from_file_location("claimflow_studio_entry", ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def test_langgraph_json_points_at_a_factory_of_the_compiled_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = _load_factory()
    graph = factory()  # type: ignore[operator]
    assert set(graph.get_graph().nodes) == {
        "__start__", "check_worthiness", "evidence_stance", "justify", "veracity", "__end__",
    }  # fmt: skip
    assert graph.checkpointer is None  # the LangGraph server brings its own
    config = tmp_path / "cw.yaml"
    config.write_text("stages: [check_worthiness]\nbackends: {default: {kind: fake}}\n", encoding="utf-8")
    monkeypatch.setenv("CLAIMFLOW_CONFIG", str(config))
    small = factory({"configurable": {}})  # type: ignore[operator]
    assert set(small.get_graph().nodes) == {"__start__", "check_worthiness", "__end__"}
    out = small.invoke({"claim": "A claim.", "evidence": [], "force": False})
    assert out["stages_run"] == ["check_worthiness"] and out["trace"][0].node == "check_worthiness"

"""The check-worthiness gate policy (``check_worthiness.gate``, issue #17): by default (``annotate``) a
claim judged not check-worthy that comes with evidence is verified anyway and its check-worthiness
reported; ``stop`` ends the run at the gate, for triage. On the fake backend, through the Python
API and the CLI; and the issue's own example on the real default models (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import FIXTURES, PROMPT_ONLY, prefer, prompt_config
from typer.testing import CliRunner

from claimflow import Verifier
from claimflow.cli.main import app
from claimflow.config import PipelineConfig
from claimflow.errors import ConfigError
from claimflow.llm.fake import FakeBackend
from claimflow.verifier import NodeUpdate

CLAIM = "The Eiffel Tower is in Berlin."
EVIDENCE = [
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France.",
    "It was designed by Gustave Eiffel's company and completed in 1889.",
]
STOP = prompt_config({"check_worthiness": {"gate": "stop"}})
runner = CliRunner()


def not_worthy() -> FakeBackend:
    return FakeBackend(score_fn=prefer("No"))


def test_annotate_is_the_default_and_verifies_a_claim_judged_not_check_worthy() -> None:
    assert PipelineConfig().check_worthiness.gate == "annotate"
    updates: list[NodeUpdate] = []
    run = Verifier(PROMPT_ONLY, backends={"default": not_worthy()}).run(CLAIM, EVIDENCE, on_update=updates.append)
    result = run.result
    assert result.status == "verified" and result.veracity is not None
    assert result.stages_run == ["check_worthiness", "evidence_stance", "justify", "veracity"]
    assert result.check_worthiness is not None and result.check_worthiness.label == "No"  # reported
    assert updates[0].update["gate"] == "annotated" and run.state["gate"] == "annotated"
    assert "Check-worthy: No" in result.summary()


def test_stop_ends_the_run_at_the_gate_and_force_still_runs_on() -> None:
    stopped = Verifier(STOP, backends={"default": not_worthy()}).verify(CLAIM, EVIDENCE)
    assert stopped.status == "not_check_worthy" and stopped.stages_run == ["check_worthiness"]
    assert stopped.veracity is None
    forced = Verifier(STOP, backends={"default": not_worthy()}).run(CLAIM, EVIDENCE, force=True)
    assert forced.result.status == "verified" and forced.state["gate"] == "forced"


@pytest.mark.parametrize("config", [PROMPT_ONLY, STOP], ids=["annotate", "stop"])
def test_a_check_worthy_claim_passes_either_way(config: PipelineConfig) -> None:
    run = Verifier(config, backends={"default": FakeBackend(score_fn=prefer("Yes"))}).run(CLAIM, EVIDENCE)
    assert run.result.status == "verified" and run.state["gate"] == "pass"


def test_with_nothing_to_verify_it_with_the_gate_still_says_why_the_run_ended() -> None:
    # no evidence: only check-worthiness can run, under either policy
    for config in (PROMPT_ONLY, STOP):
        result = Verifier(config, backends={"default": not_worthy()}).verify(CLAIM, [])
        assert result.status == "not_check_worthy" and result.stages_run == ["check_worthiness"]
    # triage: the check-worthiness stage alone (batch --stages check_worthiness over transcripts)
    triage = PROMPT_ONLY.with_stages(("check_worthiness",))
    result = Verifier(triage, backends={"default": not_worthy()}).verify(CLAIM, EVIDENCE)
    assert result.status == "not_check_worthy"
    worthy = Verifier(triage, backends={"default": FakeBackend(score_fn=prefer("Yes"))}).verify(CLAIM, EVIDENCE)
    assert worthy.status == "partial"


def test_the_gate_reads_the_evidence_only_when_it_decides_the_gate() -> None:
    worthy = Verifier(PROMPT_ONLY, backends={"default": FakeBackend(score_fn=prefer("Yes"))}).run(CLAIM, EVIDENCE)
    assert set(worthy.trace[0].reads) == {"claim"}
    annotated = Verifier(PROMPT_ONLY, backends={"default": not_worthy()}).run(CLAIM, EVIDENCE)
    assert set(annotated.trace[0].reads) == {"claim", "force", "evidence"}


def test_the_policy_is_a_validated_config_key(tmp_path: Path) -> None:
    path = tmp_path / "triage.yaml"
    path.write_text("check_worthiness: {gate: stop}\n", encoding="utf-8")
    assert PipelineConfig.from_yaml(path).check_worthiness.gate == "stop"
    assert "gate: annotate" in PipelineConfig().to_yaml()
    path.write_text("check_worthiness: {gate: maybe}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"check_worthiness\.gate: Input should be 'annotate' or 'stop'"):
        PipelineConfig.from_yaml(path)


# --- the CLI --------------------------------------------------------------------------------------


def fake_config(tmp_path: Path, **check_worthiness: object) -> Path:
    """The fake pipeline with a threshold no fake score reaches: every claim is judged not check-worthy."""
    text = (FIXTURES / "fake.yaml").read_text(encoding="utf-8")
    settings = {"predictor": "prompt", "threshold": 0.9, **check_worthiness}
    text = text.replace("check_worthiness: {predictor: prompt}", f"check_worthiness: {json.dumps(settings)}")
    path = tmp_path / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def evidence_file(tmp_path: Path) -> Path:
    path = tmp_path / "evidence.txt"
    path.write_text("\n".join(EVIDENCE) + "\n", encoding="utf-8")
    return path


def test_cli_verify_with_evidence_gives_a_verdict_and_says_it_verified_anyway(tmp_path: Path) -> None:
    result = runner.invoke(app, ["verify", CLAIM, "-e", str(evidence_file(tmp_path)), "-c", str(fake_config(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "Status: verified" in result.stdout and "Veracity: " in result.stdout
    assert "Check-worthy: " in result.stdout  # reported (P(Yes)=0.50, under the threshold of 0.9)
    assert "verified anyway, as it has evidence (check_worthiness.gate: annotate)" in result.stdout


def test_cli_verify_under_gate_stop_explains_the_stop(tmp_path: Path) -> None:
    config = fake_config(tmp_path, gate="stop")
    result = runner.invoke(app, ["verify", CLAIM, "-e", str(evidence_file(tmp_path)), "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "Status: not_check_worthy" in result.stdout and "Veracity" not in result.stdout
    assert "--force verifies it anyway" in result.stdout
    forced = runner.invoke(app, ["verify", CLAIM, "-e", str(evidence_file(tmp_path)), "-c", str(config), "--force"])
    assert "Status: verified" in forced.stdout


def test_cli_verify_without_evidence_says_how_to_get_a_verdict(tmp_path: Path) -> None:
    result = runner.invoke(app, ["verify", CLAIM, "-c", str(FIXTURES / "fake.yaml")])
    assert result.exit_code == 0, result.output
    assert "Status: no_evidence" in result.stdout
    assert "pass --evidence FILE" in " ".join(result.stderr.split())


def test_cli_verify_with_no_arguments_says_what_to_do() -> None:
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert message.startswith("error: InputError: give a CLAIM to verify, and its evidence:")
    assert "--evidence FILE" in message and "--example" in message and "claimflow serve" in message


# --- the example on the real default models ---------------------------------------------


@pytest.mark.slow
def test_the_eiffel_tower_in_berlin_gets_a_verdict_on_the_default_models(tmp_path: Path) -> None:
    result = runner.invoke(app, ["verify", CLAIM, "--evidence", str(evidence_file(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "verified", data["status"]
    assert data["veracity"]["label"] in {"SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"}
    assert data["check_worthiness"]["label"] in {"Yes", "No"}  # reported whatever it says
    assert data["justifications"]["refute"]["text"]
    assert data["stages_run"] == ["check_worthiness", "evidence_stance", "justify", "veracity"]
    # the text output: the verdict, and no third-party chatter in the middle of it
    text = runner.invoke(app, ["verify", CLAIM, "--evidence", str(evidence_file(tmp_path))])
    assert text.exit_code == 0
    assert "Veracity: " in text.stdout and "Loading weights" not in text.output and "Warning" not in text.output

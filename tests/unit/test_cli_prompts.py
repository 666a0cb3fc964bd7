from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from claimflow.cli.main import app
from claimflow.prompts import TemplateRegistry
from claimflow.prompts.docs import markdown_index

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_list_show_render() -> None:
    listing = runner.invoke(app, ["prompts", "list"])
    assert listing.exit_code == 0 and "checkworthiness_long@1#" in listing.stdout
    shown = runner.invoke(app, ["prompts", "show", "checkworthiness_short"])
    assert shown.exit_code == 0 and "id: checkworthiness_short" in shown.stdout
    rendered = runner.invoke(
        app, ["prompts", "render", "justification_support@1", "-i", "claim=C.", "-i", 'evidence=["E1.", "E2."]']
    )
    assert rendered.exit_code == 0, rendered.output
    assert "Given a claim: C." in rendered.stdout and "- E1.\n- E2." in rendered.stdout


def test_render_reports_missing_inputs() -> None:
    result = runner.invoke(app, ["prompts", "render", "checkworthiness_short@1"])
    assert result.exit_code == 2 and "needs input" in result.stderr


def test_diff_between_versions(tmp_path: Path) -> None:
    base = (ROOT / "src/claimflow/prompts/templates/check_worthiness/checkworthiness_short.v1.yaml").read_text()
    (tmp_path / "checkworthiness_short.v2.yaml").write_text(
        base.replace("version: 1", "version: 2").replace("worth conducting", "worth"), encoding="utf-8"
    )
    result = runner.invoke(
        app, ["prompts", "diff", "checkworthiness_short@1", "checkworthiness_short@2", "-t", str(tmp_path)]
    )
    assert result.exit_code == 0
    assert "-version: 1" in result.stdout and "+version: 2" in result.stdout


def test_check_rejects_a_gold_label_in_an_inference_template(tmp_path: Path) -> None:
    bad = tmp_path / "leaky.v1.yaml"
    bad.write_text(
        "id: leaky\nversion: 1\ntask: evidence_stance\nkind: classify\ninputs: [claim, sentence, label]\n"
        'user: "Claim: {{ claim }} Label for Claim: {{ label }} Sentence: {{ sentence }}"\n'
        'label_words: {SUPPORT: ["SUPPORT"], REFUTE: ["REFUTE"]}\nsource: test\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["prompts", "check", str(bad)])
    assert result.exit_code == 1
    assert "label" in result.stderr and "gold" in result.stderr
    good = ROOT / "src/claimflow/prompts/templates/evidence_stance/evidence_stance.v1.yaml"
    assert runner.invoke(app, ["prompts", "check", str(good)]).exit_code == 0


def test_check_refuses_training_only_templates_for_inference(tmp_path: Path) -> None:
    train = tmp_path / "train.v1.yaml"
    train.write_text(
        "id: train\nversion: 1\ntask: justification\nkind: generate\ninputs: [claim, label]\n"
        'user: "{{ claim }} is {{ label }}"\nsource: test\nuses_gold: true\n',
        encoding="utf-8",
    )
    assert runner.invoke(app, ["prompts", "check", str(train)]).exit_code == 1
    assert runner.invoke(app, ["prompts", "check", str(train), "--no-inference"]).exit_code == 0


def test_docs_prompts_md_is_current() -> None:
    expected = markdown_index(TemplateRegistry(include_env=False))
    assert (ROOT / "docs" / "prompts.md").read_text(encoding="utf-8") == expected, (
        "run: claimflow prompts doc > docs/prompts.md"
    )

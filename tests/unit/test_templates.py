"""Shipped templates: they load, their hashes are frozen, their rendered messages are golden."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import FIXTURES

from claimflow.errors import LeakageError, TemplateError, TemplateNotFoundError
from claimflow.prompts import PromptTemplate, TemplateRegistry

GOLDEN_INPUTS = {
    "claim": "Vitamin D prevents COVID-19.",
    "sentence": "A trial found no effect of vitamin D on infections.",
    "evidence": ["First sentence.", "Second sentence."],
    "support_justification": "Some studies link low vitamin D to infection.",
    "refute_justification": "A randomized trial found no effect.",
    "understanding": "The evidence suggests vitamin D has no effect on infection.",
    "expected": "A reference explanation.",
    "actual": "A generated explanation.",
}


def _rendered(template: PromptTemplate) -> dict[str, object]:
    rendered = template.render({k: GOLDEN_INPUTS[k] for k in template.inputs})
    return {
        "ref": template.ref,
        "messages": [{"role": m.role, "content": m.content} for m in rendered.messages],
        "assistant_prefix": rendered.assistant_prefix,
    }


def test_every_shipped_template_renders_its_golden_messages() -> None:
    golden = json.loads((FIXTURES / "golden_prompts.json").read_text(encoding="utf-8"))
    registry = TemplateRegistry(include_env=False)
    current = {f"{t.id}@{t.version}": _rendered(t) for t in registry.all()}
    assert current == golden, "a shipped template changed: add a new version file instead of editing it"


def test_shipped_template_versions_are_immutable() -> None:
    hashes = json.loads((FIXTURES / "template_hashes.json").read_text(encoding="utf-8"))
    registry = TemplateRegistry(include_env=False)
    for key, expected in hashes.items():
        assert registry.get(key).hash == expected, f"{key} was edited; a change must be a new version"


def test_lookup_by_id_gives_the_latest_version_and_checks_hashes() -> None:
    registry = TemplateRegistry(include_env=False)
    template = registry.get("checkworthiness_long")
    assert registry.get(f"checkworthiness_long@{template.version}#{template.hash[:8]}") == template
    with pytest.raises(TemplateError, match="hash"):
        registry.get("checkworthiness_long@1#deadbeef")
    with pytest.raises(TemplateNotFoundError, match="no version 99"):
        registry.get("checkworthiness_long@99")
    with pytest.raises(TemplateNotFoundError, match="known templates"):
        registry.get("nope")


def _write(tmp_path: Path, body: str, name: str = "t.v1.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


BASE = """id: custom
version: 1
task: veracity
kind: classify
inputs: [claim{extra}]
user: "Claim: {{{{ claim }}}}{use}"
label_words: {{"T": [" true"], "F": [" false"]}}
source: test
"""


def test_a_template_reading_a_gold_label_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE.format(extra=", label", use=" Gold: {{ label }}"))
    with pytest.raises(LeakageError, match=r"\['label'\]"):
        PromptTemplate.from_file(path)


def test_a_training_template_may_read_gold_labels_when_it_says_so(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE.format(extra=", label", use=" Gold: {{ label }}") + "uses_gold: true\n")
    assert PromptTemplate.from_file(path).uses_gold


def test_undeclared_and_unused_inputs_are_errors(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="undeclared"):
        PromptTemplate.from_file(_write(tmp_path, BASE.format(extra="", use=" {{ other }}")))
    with pytest.raises(TemplateError, match="never used"):
        PromptTemplate.from_file(_write(tmp_path, BASE.format(extra=", other", use="")))


def test_malformed_templates_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="syntax"):
        PromptTemplate.from_file(_write(tmp_path, BASE.format(extra="", use=" {% if %}")))
    with pytest.raises(TemplateError, match="YAML mapping"):
        PromptTemplate.from_file(_write(tmp_path, "- just a list"))
    with pytest.raises(TemplateError, match="cannot read"):
        PromptTemplate.from_file(_write(tmp_path, "id: [unclosed"))


def test_rendering_checks_inputs() -> None:
    template = TemplateRegistry(include_env=False).get("checkworthiness_short@1")
    with pytest.raises(TemplateError, match="needs input"):
        template.render({})
    with pytest.raises(TemplateError, match="unknown input"):
        template.render({"claim": "x", "label": "Yes"})


def test_user_template_folders_are_loaded_and_duplicates_refused(tmp_path: Path) -> None:
    _write(tmp_path, BASE.format(extra="", use=""))
    registry = TemplateRegistry([tmp_path], include_env=False)
    assert registry.get("custom@1").labels == ("T", "F")
    dup = tmp_path / "again"
    dup.mkdir()
    _write(dup, BASE.format(extra="", use=""))
    with pytest.raises(TemplateError, match="defined twice"):
        TemplateRegistry([tmp_path], include_env=False)

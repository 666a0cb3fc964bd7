"""The template registry parses a shipped template only when it is asked for (start-up cost)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from claimflow.errors import TemplateError
from claimflow.prompts import registry as registry_module
from claimflow.prompts.registry import TemplateRegistry, builtin_template_dir
from claimflow.prompts.template import PromptTemplate


def test_building_the_registry_parses_no_shipped_template(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[Path] = []
    original = PromptTemplate.from_file

    def counting(path: Path) -> PromptTemplate:
        parsed.append(path)
        return original(path)

    monkeypatch.setattr(PromptTemplate, "from_file", staticmethod(counting))
    registry = TemplateRegistry(include_env=False)
    assert parsed == [] and len(registry) == len(list(builtin_template_dir().rglob("*.yaml")))
    template = registry.get("checkworthiness_short@1")
    assert [p.name for p in parsed] == ["checkworthiness_short.v1.yaml"]
    assert registry.get("checkworthiness_short") is template  # parsed once
    assert len(registry.all()) == len(registry) == len({*parsed})


def test_a_shipped_file_whose_content_disagrees_with_its_name_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = builtin_template_dir() / "check_worthiness" / "checkworthiness_short.v1.yaml"
    shutil.copy(source, tmp_path / "checkworthiness_short.v2.yaml")
    monkeypatch.setattr(registry_module, "builtin_template_dir", lambda: tmp_path)
    registry = TemplateRegistry(include_env=False)
    with pytest.raises(TemplateError, match="its file name says"):
        registry.get("checkworthiness_short@2")

"""The template registry: built-in templates plus user folders, looked up by ``id[@version]``."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from claimflow.errors import TemplateError, TemplateNotFoundError
from claimflow.prompts.template import PromptTemplate

TEMPLATE_DIRS_ENV = "CLAIMFLOW_TEMPLATE_DIRS"
"""Extra template folders, separated by the OS path separator, searched after the built-in ones."""


def builtin_template_dir() -> Path:
    return Path(str(resources.files("claimflow.prompts") / "templates"))


_BUILTIN_NAME = re.compile(r"^(?P<id>[\w.\-]+)\.v(?P<version>\d+)\.yaml$")
"""How a shipped template file is named: ``<id>.v<version>.yaml``."""


class TemplateRegistry:
    """All templates from the built-in folder and any extra folders, indexed by id and version.

    The built-in templates are indexed by file name and parsed on first use (parsing all of them
    costs a `verify` start ~0.3 s; the tests check every shipped one); user folders are parsed at
    once, so a broken or leaking user template is refused when the registry is built.
    """

    def __init__(self, extra_dirs: Sequence[Path] = (), *, include_env: bool = True) -> None:
        dirs = [*extra_dirs]
        if include_env and os.environ.get(TEMPLATE_DIRS_ENV):
            dirs += [Path(p) for p in os.environ[TEMPLATE_DIRS_ENV].split(os.pathsep) if p]
        self._templates: dict[tuple[str, int], PromptTemplate | None] = {}  # None: not parsed yet
        self._paths: dict[tuple[str, int], Path] = {}
        self._load_dir(builtin_template_dir(), lazy=True)
        for directory in dirs:
            self._load_dir(directory)

    def _load_dir(self, directory: Path, *, lazy: bool = False) -> None:
        if not directory.is_dir():
            raise TemplateError(f"template folder {directory} does not exist")
        for path in sorted(directory.rglob("*.yaml")):
            named = _BUILTIN_NAME.match(path.name) if lazy else None
            template: PromptTemplate | None = None
            if named:
                key = (named["id"], int(named["version"]))
            else:
                template = PromptTemplate.from_file(path)
                key = (template.id, template.version)
            if key in self._templates:
                raise TemplateError(
                    f"{key[0]}@{key[1]} is defined twice: {self._paths[key]} and {path}; "
                    "a changed template needs a new version number"
                )
            self._templates[key] = template
            self._paths[key] = path

    def _template(self, key: tuple[str, int]) -> PromptTemplate:
        template = self._templates[key]
        if template is None:
            template = PromptTemplate.from_file(self._paths[key])
            if (template.id, template.version) != key:
                raise TemplateError(
                    f"{self._paths[key]} holds {template.id}@{template.version}, not the {key[0]}@{key[1]} "
                    "its file name says"
                )
            self._templates[key] = template
        return template

    def get(self, ref: str) -> PromptTemplate:
        """Look up ``id@version`` or ``id`` (the latest version). A ``#hash`` suffix is checked."""
        ref, _, expected_hash = ref.partition("#")
        template_id, _, version_text = ref.partition("@")
        versions = sorted(v for (tid, v) in self._templates if tid == template_id)
        if not versions:
            known = ", ".join(sorted({tid for tid, _ in self._templates}))
            raise TemplateNotFoundError(f"unknown template {template_id!r}; known templates: {known}")
        if version_text:
            try:
                version = int(version_text.lstrip("v"))
            except ValueError as exc:
                raise TemplateError(f"bad template version in {ref!r}: use id@N") from exc
            if version not in versions:
                raise TemplateNotFoundError(f"template {template_id!r} has no version {version}; versions: {versions}")
        else:
            version = versions[-1]
        template = self._template((template_id, version))
        if expected_hash and not template.hash.startswith(expected_hash):
            raise TemplateError(
                f"{template_id}@{version} has hash {template.hash[:8]}, not {expected_hash}: "
                "the template content differs from the one referenced"
            )
        return template

    def path_of(self, template: PromptTemplate) -> Path:
        return self._paths[(template.id, template.version)]

    def __len__(self) -> int:
        return len(self._templates)

    def all(self) -> list[PromptTemplate]:
        return [self._template(key) for key in sorted(self._templates)]

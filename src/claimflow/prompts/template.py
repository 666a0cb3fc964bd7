"""A prompt template: one YAML file per version, strictly rendered, content-hashed."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from pydantic import Field, ValidationError, model_validator

from claimflow.errors import LeakageError, TemplateError
from claimflow.io import load_yaml
from claimflow.llm.base import Message
from claimflow.prompts.sanitize import neutralize_values
from claimflow.types import StrictModel

Task = Literal[
    "check_worthiness",
    "evidence_stance",
    "evidence_ranking",
    "justification",
    "veracity",
    "understanding",
    "reasoning",
    "explanation_eval",
    "other",
]

GOLD_FIELD_PATTERN = re.compile(
    r"^(label|labels|gold.*|.*_label|verdict|answer|target|truth|veracity_label|ground_truth)$",
    re.IGNORECASE,
)
"""Variable names that look like gold labels; an inference template may not use them."""

_ENV = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)


def gold_like_fields(names: set[str] | frozenset[str]) -> list[str]:
    return sorted(n for n in names if GOLD_FIELD_PATTERN.match(n))


class PromptTemplate(StrictModel):
    """A versioned prompt. ``kind`` says whether it feeds a classify or a generate stage."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    version: int = Field(ge=1)
    task: Task
    kind: Literal["classify", "generate"]
    description: str = ""
    inputs: tuple[str, ...]
    system: str | None = None
    user: str
    assistant_prefix: str = ""
    label_words: dict[str, tuple[str, ...]] | None = None
    """label -> exact continuation strings (mind the leading space after a prefix like ``Answer:``)."""
    reasoning_first: bool = False
    """The model writes its reasoning before the label (chain of thought): a classifier must
    generate and parse the label after ``answer_marker`` instead of scoring label words."""
    answer_marker: str | None = None
    """Text after whose last occurrence the label is parsed in generated output."""
    source: str
    uses_gold: bool = False
    """Training-only templates that read a gold label must say so; inference refuses them."""
    notes: str = ""

    @model_validator(mode="after")
    def _check(self) -> PromptTemplate:
        if self.kind == "classify" and not self.label_words:
            raise ValueError("a classify template needs label_words (label -> list of words)")
        if self.reasoning_first and self.kind != "classify":
            raise ValueError("reasoning_first only applies to classify templates")
        if self.label_words and any(not words for words in self.label_words.values()):
            raise ValueError("every label needs at least one label word")
        used = self.variables
        declared = set(self.inputs)
        if used - declared:
            raise ValueError(f"template uses undeclared inputs {sorted(used - declared)}; add them to 'inputs'")
        if declared - used:
            raise ValueError(f"declared inputs {sorted(declared - used)} are never used by the template")
        gold = gold_like_fields(used)
        if gold and not self.uses_gold:
            raise LeakageError(
                f"template {self.id}@{self.version} references gold-label field(s) {gold}; inference "
                "templates must not see gold labels (set uses_gold: true for a training-only template)"
            )
        return self

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.label_words or ())

    @cached_property
    def variables(self) -> set[str]:
        found: set[str] = set()
        for part in (self.system, self.user, self.assistant_prefix):
            if part:
                try:
                    found |= meta.find_undeclared_variables(_ENV.parse(part))
                except TemplateSyntaxError as exc:
                    raise ValueError(f"Jinja2 syntax error on line {exc.lineno}: {exc.message}") from exc
        return found

    @cached_property
    def hash(self) -> str:
        """sha256 of the canonical content: fields that differ from their defaults, sorted keys
        (so a new optional schema field never changes the hash of an existing template)."""
        payload = json.dumps(self.model_dump(mode="json", exclude_defaults=True), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @property
    def ref(self) -> str:
        """``id@version#hash8``: what every prediction records."""
        return f"{self.id}@{self.version}#{self.hash[:8]}"

    def render(self, values: Mapping[str, Any]) -> RenderedPrompt:
        """Render the messages; every declared input must be given and nothing else. Chat control
        markers in the inputs are neutralized (:mod:`claimflow.prompts.sanitize`): inputs are untrusted."""
        missing = [name for name in self.inputs if name not in values]
        if missing:
            raise TemplateError(f"template {self.id}@{self.version} needs input(s) {missing}")
        extra = sorted(set(values) - set(self.inputs))
        if extra:
            raise TemplateError(f"template {self.id}@{self.version} got unknown input(s) {extra}")
        values = neutralize_values(values)
        try:
            messages = []
            if self.system:
                messages.append(Message("system", _ENV.from_string(self.system).render(values).strip()))
            messages.append(Message("user", _ENV.from_string(self.user).render(values).strip()))
            prefix = _ENV.from_string(self.assistant_prefix).render(values) if self.assistant_prefix else ""
        except (UndefinedError, SecurityError, TypeError) as exc:
            raise TemplateError(f"cannot render {self.id}@{self.version}: {exc}") from exc
        return RenderedPrompt(messages=tuple(messages), assistant_prefix=prefix, template_ref=self.ref)

    @classmethod
    def from_file(cls, path: Path) -> PromptTemplate:
        data = load_yaml(path, "template file", error=TemplateError, mapping=True)
        try:
            return cls.model_validate(data)
        except LeakageError as exc:
            raise LeakageError(f"{path}: {exc}") from exc
        except ValidationError as exc:
            leak = [e for e in exc.errors() if "gold-label" in str(e.get("msg", ""))]
            if leak:
                raise LeakageError(f"{path}: {leak[0]['msg']}") from exc
            raise TemplateError(f"invalid template file {path}:\n{exc}") from exc


@dataclass(frozen=True)
class RenderedPrompt:
    messages: tuple[Message, ...]
    assistant_prefix: str
    template_ref: str

"""Predictors built from a prompt template and a backend: classify (verbalized) and generate."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

from claimflow.config import VerbalizerKind
from claimflow.errors import TemplateError
from claimflow.llm.base import Backend, GenRequest, ScoreRequest
from claimflow.prompts.template import PromptTemplate
from claimflow.types import LabelScores
from claimflow.verbalizers import LogitVerbalizer, TextVerbalizer

log = logging.getLogger(__name__)
T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class PromptClassifier:
    """template + backend + verbalizer -> one :class:`LabelScores` per input.

    With the ``logit`` verbalizer the label words are scored by log-probability (one forward pass
    per prompt where the engine allows); when the backend has no log-probabilities, or with the
    ``text`` verbalizer, a short answer is generated and parsed, and parse failures are recorded.
    """

    def __init__(
        self,
        template: PromptTemplate,
        backend: Backend,
        *,
        verbalizer: VerbalizerKind = "logit",
        batch_size: int = 16,
        max_answer_tokens: int = 8,
    ) -> None:
        if template.kind != "classify" or not template.label_words:
            raise TemplateError(f"{template.ref} is not a classify template")
        self.template = template
        self.backend = backend
        self.batch_size = batch_size
        self.max_answer_tokens = max_answer_tokens
        self.mode: VerbalizerKind = verbalizer
        if verbalizer == "logit" and not backend.capabilities.logprobs:
            log.warning("%s gives no log-probabilities: %s falls back to text verbalizing", backend.kind, template.ref)
            self.mode = "text"
        self.logit_verbalizer = LogitVerbalizer(template.label_words)
        self.text_verbalizer = TextVerbalizer.from_label_words(template.label_words)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.template.labels

    def predict(self, inputs: Sequence[Mapping[str, Any]]) -> list[LabelScores]:
        results: list[LabelScores] = []
        for batch in chunked(inputs, self.batch_size):
            rendered = [self.template.render(values) for values in batch]
            if self.mode == "logit":
                requests = [
                    ScoreRequest(r.messages, self.logit_verbalizer.candidates, r.assistant_prefix) for r in rendered
                ]
                results += [self.logit_verbalizer.from_logprobs(lp) for lp in self.backend.score(requests)]
            else:
                gen_requests = [
                    GenRequest(r.messages, max_tokens=self.max_answer_tokens, assistant_prefix=r.assistant_prefix)
                    for r in rendered
                ]
                results += [self.text_verbalizer.from_text(g.text) for g in self.backend.generate(gen_requests)]
        return results


class PromptGenerator:
    """template + backend -> one generated text per input."""

    def __init__(
        self,
        template: PromptTemplate,
        backend: Backend,
        *,
        max_tokens: int = 200,
        temperature: float = 0.0,
        repetition_penalty: float = 1.0,
        batch_size: int = 8,
    ) -> None:
        if template.kind != "generate":
            raise TemplateError(f"{template.ref} is not a generate template")
        self.template = template
        self.backend = backend
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.repetition_penalty = repetition_penalty
        self.batch_size = batch_size

    def generate(self, inputs: Sequence[Mapping[str, Any]]) -> list[str]:
        texts: list[str] = []
        for batch in chunked(inputs, self.batch_size):
            requests = []
            for values in batch:
                rendered = self.template.render(values)
                requests.append(
                    GenRequest(
                        rendered.messages,
                        max_tokens=self.max_tokens,
                        temperature=self.temperature,
                        repetition_penalty=self.repetition_penalty,
                        assistant_prefix=rendered.assistant_prefix,
                    )
                )
            texts += [g.text.strip() for g in self.backend.generate(requests)]
        return texts

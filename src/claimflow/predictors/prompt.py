"""Predictors built from a prompt template and a backend: classify (verbalized) and generate."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from claimflow.config import VerbalizerKind
from claimflow.errors import CapabilityError, ParseError, TemplateError
from claimflow.llm.base import Backend, GenRequest, ScoreRequest
from claimflow.prompts.demos import DemoSelector, StyleName, with_demos
from claimflow.prompts.template import PromptTemplate, RenderedPrompt
from claimflow.types import LabelScores
from claimflow.verbalizers import ContainsEsVerbalizer, LogitVerbalizer, StructuredVerbalizer, TextVerbalizer
from claimflow.verbalizers.logit import Aggregation

log = logging.getLogger(__name__)
T = TypeVar("T")
CONTENT_FREE_INPUTS = ("N/A", "", "[MASK]")
"""The content-free inputs of Zhao et al. (2021)."""


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class PromptClassifier:
    """template + backend + verbalizer -> one :class:`LabelScores` per input.

    Modes (``verbalizer``):

    - ``logit``: label words scored by log-probability (one forward pass per prompt where the
      engine allows); optional contextual calibration and temperature;
    - ``text``: a short answer is generated and parsed by rules; failures are recorded;
    - ``structured``: a JSON answer with a ``Literal`` label field (grammar-constrained in
      llama.cpp, validated and re-asked through instructor on OpenAI-compatible servers);
    - ``es_rule``: the check-worthiness paper's legacy rule (answer contains "es" -> Yes).

    ``logit`` falls back to ``text`` when the backend has no log-probabilities. Templates marked
    ``reasoning_first`` (chain of thought) always generate and parse the label after their
    ``answer_marker``.
    """

    def __init__(
        self,
        template: PromptTemplate,
        backend: Backend,
        *,
        verbalizer: VerbalizerKind = "logit",
        batch_size: int = 16,
        max_answer_tokens: int = 8,
        aggregation: Aggregation = "logsumexp",
        temperature: float = 1.0,
        demos: DemoSelector | None = None,
        n_shots: int = 0,
        demo_style: StyleName = "chat",
    ) -> None:
        if template.kind != "classify" or not template.label_words:
            raise TemplateError(f"{template.ref} is not a classify template")
        self.template = template
        self.backend = backend
        self.batch_size = batch_size
        self.max_answer_tokens = max_answer_tokens
        self.mode: VerbalizerKind = verbalizer
        if template.reasoning_first and verbalizer in ("logit", "structured"):
            self.mode = "text"
            self.max_answer_tokens = max(max_answer_tokens, 384)
        if self.mode == "logit" and not backend.capabilities.logprobs:
            log.warning("%s gives no log-probabilities: %s falls back to text verbalizing", backend.kind, template.ref)
            self.mode = "text"
        if self.mode == "structured" and not backend.capabilities.structured:
            raise CapabilityError(
                f"the {backend.kind} backend has no structured output; use the logit or text verbalizer"
            )
        self.logit_verbalizer = LogitVerbalizer(template.label_words, aggregation=aggregation, temperature=temperature)
        self.text_verbalizer = TextVerbalizer.from_label_words(template.label_words)
        self.structured_verbalizer = StructuredVerbalizer(template.labels)
        self.legacy_verbalizer = ContainsEsVerbalizer()
        self.demos = demos
        self.n_shots = n_shots if demos is not None else 0
        self.demo_style: StyleName = demo_style

    @property
    def labels(self) -> tuple[str, ...]:
        return self.template.labels

    def calibrate(self, content_free: Sequence[str] = CONTENT_FREE_INPUTS) -> dict[str, float]:
        """Contextual calibration: score the template with every input set to each content-free
        string, average the distributions, and calibrate later predictions by them."""
        if self.mode != "logit":
            raise CapabilityError("contextual calibration needs the logit verbalizer")
        self.logit_verbalizer.calibration = None
        inputs = [
            {name: ([value] if name == "evidence" else value) for name in self.template.inputs}
            for value in content_free
        ]
        dists = [r.probabilities for r in self.predict(inputs)]
        mean = {label: float(np.mean([d.get(label, 0.0) for d in dists])) for label in self.labels}
        self.logit_verbalizer.set_calibration(mean)
        return mean

    def predict(self, inputs: Sequence[Mapping[str, Any]], ids: Sequence[str] | None = None) -> list[LabelScores]:
        """One distribution per input. ``ids`` (optional) keep each item out of its own demos."""
        results: list[LabelScores] = []
        keys = list(ids) if ids is not None else [None] * len(inputs)
        for start in range(0, len(inputs), self.batch_size):
            batch = inputs[start : start + self.batch_size]
            rendered, demo_ids = [], []
            for values, key in zip(batch, keys[start : start + self.batch_size], strict=True):
                prompt = self.template.render(values)
                shots = self.demos.select(values, self.n_shots, exclude_id=key) if self.demos else []
                rendered.append(with_demos(self.template, prompt, shots, self.demo_style))
                demo_ids.append([d.id for d in shots])
            scores = self._predict_rendered(rendered)
            results += [s.model_copy(update={"demo_ids": d}) if d else s for s, d in zip(scores, demo_ids, strict=True)]
        return results

    def _predict_rendered(self, rendered: Sequence[RenderedPrompt]) -> list[LabelScores]:
        if self.mode == "logit":
            verbalizer = self.logit_verbalizer
            requests = [ScoreRequest(r.messages, verbalizer.candidates, r.assistant_prefix) for r in rendered]
            return [verbalizer.from_logprobs(lp) for lp in self.backend.score(requests)]
        if self.mode == "structured":
            return [self._structured(r) for r in rendered]
        gen_requests = [
            GenRequest(r.messages, max_tokens=self.max_answer_tokens, assistant_prefix=r.assistant_prefix)
            for r in rendered
        ]
        texts = [g.text for g in self.backend.generate(gen_requests)]
        if self.mode == "es_rule":
            return [self.legacy_verbalizer.from_text(t) for t in texts]
        return [self._parse(t) for t in texts]

    def _parse(self, text: str) -> LabelScores:
        marker = self.template.answer_marker
        if marker and marker in text:
            answer = text.rsplit(marker, 1)[1]
            return self.text_verbalizer.from_text(answer).model_copy(update={"raw_output": text})
        return self.text_verbalizer.from_text(text)

    def _structured(self, rendered: RenderedPrompt) -> LabelScores:
        try:
            answer = self.backend.generate_structured(rendered.messages, self.structured_verbalizer.schema)
        except ParseError as exc:
            return self.structured_verbalizer.from_object(None, raw=exc.raw, error=str(exc))
        return self.structured_verbalizer.from_object(answer, raw=answer.model_dump_json())


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

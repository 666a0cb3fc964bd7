"""Result and input types (pydantic v2): what a verification takes and returns."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["verified", "not_check_worthy", "no_evidence", "partial"]
"""How far the pipeline went: all stages ran; stopped at the check-worthiness gate; stopped because
there was no evidence to reason over; or only a subset of stages was requested."""


class StrictModel(BaseModel):
    """The base of claimflow's pydantic models (results, configs, specs): an unknown key is a validation
    error, and instances are frozen (a field cannot be reassigned)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelScores(StrictModel):
    """A distribution over a fixed label set, as produced by a classify stage.

    ``label`` is the arg-max, or ``None`` when the model output could not be mapped to a label
    (then ``parse_error`` holds why and ``raw_output`` what the model wrote).
    """

    label: str | None
    probabilities: dict[str, float] = Field(default_factory=dict)
    raw_output: str | None = None
    parse_error: str | None = None
    demo_ids: list[str] = Field(default_factory=list, description="ids of the n-shot demos in the prompt")

    @property
    def confidence(self) -> float:
        """Probability of the predicted label (0 when there is none)."""
        return self.probabilities.get(self.label, 0.0) if self.label is not None else 0.0


class EvidenceStance(StrictModel):
    """The stance of one evidence sentence towards the claim."""

    index: int
    text: str
    label: str | None
    probabilities: dict[str, float] = Field(default_factory=dict)
    raw_output: str | None = None
    parse_error: str | None = None
    demo_ids: list[str] = Field(default_factory=list)
    relevance: float | None = Field(None, description="P(relevant to the claim), when the stance model scores it")
    used: bool = Field(True, description="False when evidence_stance.max_evidence left it out of the later stages")


class Justification(StrictModel):
    """One side's justification and the evidence it was written from."""

    side: Literal["support", "refute"]
    text: str
    evidence_indices: list[int] = Field(default_factory=list)
    generated: bool = Field(description="False when no evidence took this side and no model was called.")


class Justifications(StrictModel):
    support: Justification
    refute: Justification


class ModelProvenance(StrictModel):
    backend: str
    model: str
    source: str | None = None
    sha256: str | None = None


class Provenance(StrictModel):
    """Where a result came from: versions, models, prompts, timings and call counts."""

    claimflow_version: str
    git_commit: str | None = None
    models: dict[str, ModelProvenance] = Field(default_factory=dict)
    prompts: dict[str, str] = Field(default_factory=dict, description="stage -> id@version#hash8")
    node_seconds: dict[str, float] = Field(default_factory=dict)
    model_calls: dict[str, int] = Field(default_factory=dict)
    forward_passes: dict[str, int] = Field(default_factory=dict)
    total_seconds: float = 0.0


class VerificationResult(StrictModel):
    """Everything a verification produced: labels, distributions, justifications, provenance."""

    claim: str
    evidence: list[str]
    status: Status
    check_worthiness: LabelScores | None = None
    evidence_stances: list[EvidenceStance] = Field(default_factory=list)
    justifications: Justifications | None = None
    veracity: LabelScores | None = None
    stages_run: list[str] = Field(default_factory=list)
    provenance: Provenance
    run_id: str | None = Field(
        None, description="the run's id (LangGraph thread id) when it was recorded; `claimflow trace RUN`"
    )

    def summary(self) -> str:
        """A short human-readable account of the verdict."""
        lines = [f"Claim: {self.claim}", f"Status: {self.status}"]
        if self.check_worthiness is not None:
            cw = self.check_worthiness
            lines.append(f"Check-worthy: {cw.label} (p={cw.confidence:.2f})")
        for stance in self.evidence_stances:
            p = stance.probabilities.get(stance.label, 0.0) if stance.label else 0.0
            scores = f"p={p:.2f}" + (f", relevance={stance.relevance:.2f}" if stance.relevance is not None else "")
            unused = "" if stance.used else " [not used: below max_evidence]"
            lines.append(f"  [{stance.index}] {stance.label or 'UNPARSED'} ({scores}){unused} {stance.text}")
        if self.justifications is not None:
            lines.append(f"Supporting justification: {self.justifications.support.text}")
            lines.append(f"Refuting justification: {self.justifications.refute.text}")
        if self.veracity is not None:
            v = self.veracity
            dist = ", ".join(f"{k}={p:.2f}" for k, p in v.probabilities.items())
            lines.append(f"Veracity: {v.label} ({dist})")
        return "\n".join(lines)

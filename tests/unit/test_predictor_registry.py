"""Predictor kinds: the registry the graph builds stage predictors from, the config's validation of
the kind, and the extension point for a predictor of one's own."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict
from tests.conftest import PROMPTED

from claimflow import PipelineConfig, Verifier
from claimflow.config import BUILTIN_PREDICTOR_KINDS, predictor_kinds
from claimflow.errors import ConfigError, GraphBuildError
from claimflow.graphs import (
    PredictorContext,
    register_predictor,
    registered_predictors,
    unregister_predictor,
)
from claimflow.graphs.components import SHIPPED_ARTIFACTS, STANCE_READERS
from claimflow.llm.base import BackendStats
from claimflow.llm.fake import FakeBackend
from claimflow.types import LabelScores, ModelProvenance

VERDICTS = ("SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO")
CLAIM = "Vitamin D never prevents COVID-19."
EVIDENCE = ["A trial found no reduction in infections.", "Low vitamin D went with more COVID-19."]


class KeywordOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    word: str = "never"
    confidence: float = 0.9


class KeywordVerdict:
    """REFUTED when the claim holds the word, else SUPPORTED; remembers what it was given."""

    labels = VERDICTS

    def __init__(self, options: KeywordOptions) -> None:
        self.options = options
        self.seen: list[dict[str, Any]] = []

    def predict(self, inputs: Sequence[Mapping[str, Any]]) -> list[LabelScores]:
        out = []
        for row in inputs:
            self.seen.append(dict(row))
            label = "REFUTED" if self.options.word in row["claim"] else "SUPPORTED"
            rest = (1 - self.options.confidence) / 2
            out.append(
                LabelScores(
                    label=label, probabilities={v: self.options.confidence if v == label else rest for v in VERDICTS}
                )
            )
        return out


BUILT: list[KeywordVerdict] = []


def make_keyword(ctx: PredictorContext) -> KeywordVerdict:
    predictor = KeywordVerdict(ctx.options)
    BUILT.append(predictor)
    return predictor


@pytest.fixture
def keyword() -> Iterator[None]:
    BUILT.clear()
    register_predictor(
        "veracity",
        "keyword",
        make_keyword,
        inputs=("claim", "support_justification"),
        options=KeywordOptions,
    )
    yield
    unregister_predictor("veracity", "keyword")


def config_with(veracity: dict[str, Any], **more: Any) -> PipelineConfig:
    return PipelineConfig.from_dict({**PROMPTED, "veracity": veracity, **more})


# --- the kinds a config may name ------------------------------------------------------------------


@pytest.mark.parametrize("stage", sorted(BUILTIN_PREDICTOR_KINDS))
def test_an_unknown_kind_is_a_config_error_naming_the_stage_and_listing_its_kinds(stage: str) -> None:
    known = ", ".join(sorted(BUILTIN_PREDICTOR_KINDS[stage]))
    with pytest.raises(
        ConfigError, match=rf"{stage}\.predictor: unknown {stage} predictor 'mykind'; known kinds: {known}"
    ):
        PipelineConfig.from_dict({stage: {"predictor": "mykind"}})


def test_an_unknown_kind_in_a_yaml_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("veracity: {predictor: mykind}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c\.yaml is invalid: veracity\.predictor: unknown veracity predictor"):
        PipelineConfig.from_yaml(path)


def test_the_built_in_kinds_are_registered_with_their_shipped_artifacts() -> None:
    for stage, kinds in BUILTIN_PREDICTOR_KINDS.items():
        assert registered_predictors(stage) == predictor_kinds(stage) == tuple(sorted(kinds))  # type: ignore[arg-type]
    assert SHIPPED_ARTIFACTS[("veracity", "stance_features")] == "veracity-stance-features"
    assert STANCE_READERS == ("aggregate", "stance_features")


def test_options_are_only_for_a_kind_that_declares_them() -> None:
    with pytest.raises(ConfigError, match=r"veracity\.options is only used by predictor kinds that declare options"):
        PipelineConfig.from_dict({"veracity": {"predictor": "aggregate", "options": {"word": "x"}}})
    assert "options" not in PipelineConfig().model_dump()["veracity"]  # unset: not written out


# --- a predictor of one's own, end to end ---------------------------------------------------------


@pytest.mark.usefixtures("keyword")
def test_a_registered_veracity_predictor_runs_end_to_end(tmp_path: Path) -> None:
    config = config_with({"predictor": "keyword", "options": {"word": "never", "confidence": 0.8}})
    assert "keyword" in predictor_kinds("veracity") and "keyword" in registered_predictors("veracity")

    with Verifier(config, backends={"default": FakeBackend()}) as verifier:
        result = verifier.verify(CLAIM, EVIDENCE, force=True)
    assert result.veracity is not None and result.veracity.label == "REFUTED"
    assert result.veracity.probabilities["REFUTED"] == pytest.approx(0.8)
    (predictor,) = BUILT
    (row,) = predictor.seen
    assert set(row) == {"claim", "support_justification"}  # exactly the fields it declared
    assert row["claim"] == CLAIM and row["support_justification"] == result.justifications.support.text  # type: ignore[union-attr]
    assert result.provenance.prompts["veracity"] == "keyword"
    assert result.provenance.model_calls["veracity"] == 0
    assert result.provenance.models["veracity"] == ModelProvenance(
        backend="predictor", model="keyword", source=f"{__name__}.KeywordVerdict"
    )

    path = tmp_path / "c.yaml"
    config.save(path)
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["veracity"]["options"] == {
        "word": "never",
        "confidence": 0.8,
    }
    assert PipelineConfig.from_yaml(path) == config


@pytest.mark.usefixtures("keyword")
def test_a_registered_kind_validates_its_options_naming_the_kind() -> None:
    with pytest.raises(
        ConfigError,
        match=r"veracity\.options\.wrod: Extra inputs are not permitted "
        r"\(the keyword predictor's options: word, confidence\)",
    ):
        config_with({"predictor": "keyword", "options": {"wrod": "x"}})
    with pytest.raises(ConfigError, match=r"veracity\.options\.confidence"):
        config_with({"predictor": "keyword", "options": {"confidence": "high"}})
    with pytest.raises(ConfigError, match="only used by predictor: prompt"):
        config_with({"predictor": "keyword", "template": "veracity_justifications_rawfc@1"})
    with pytest.raises(ConfigError, match="only used by predictor: aggregate"):
        config_with({"predictor": "keyword", "nei_threshold": 0.3})
    defaults = config_with({"predictor": "keyword"})  # no options: the class's defaults
    verifier = Verifier(defaults, backends={"default": FakeBackend()})
    assert verifier.verify(CLAIM, EVIDENCE, force=True).veracity.label == "REFUTED"  # type: ignore[union-attr]


# --- build-time checks ----------------------------------------------------------------------------


@pytest.mark.usefixtures("keyword")
def test_the_fields_a_registered_predictor_reads_are_checked_at_build_time() -> None:
    config = config_with({"predictor": "keyword"}, stages=["evidence_stance", "veracity"])
    with pytest.raises(
        GraphBuildError,
        match=r"veracity\.predictor 'keyword' reads \['support_justification'\].*"
        r"support_justification comes from stage 'justify'",
    ):
        Verifier(config, backends={"default": FakeBackend()})
    assert BUILT == []  # nothing was built


def test_the_stages_a_registered_predictor_needs_are_checked_at_build_time() -> None:
    def factory(ctx: PredictorContext) -> KeywordVerdict:
        return KeywordVerdict(KeywordOptions())

    register_predictor(
        "veracity", "stance_rule", factory, inputs=("claim", "evidence_stances"), needs=("evidence_stance",)
    )
    try:
        with pytest.raises(
            GraphBuildError, match=r"veracity\.predictor 'stance_rule' reads the stances: add stage 'evidence_stance'"
        ):
            Verifier(
                config_with({"predictor": "stance_rule"}, stages=["veracity"]), backends={"default": FakeBackend()}
            )
        verifier = Verifier(config_with({"predictor": "stance_rule"}), backends={"default": FakeBackend()})
        assert verifier.components.stage_inputs("veracity") == ("claim", "evidence_stances")
    finally:
        unregister_predictor("veracity", "stance_rule")


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    artifact: Path | None = None


def test_a_registered_predictors_artifact_is_checked_and_given_to_its_factory(tmp_path: Path) -> None:
    good, wrong = tmp_path / "good", tmp_path / "wrong"
    for folder, kind in ((good, "keyword_rule"), (wrong, "encoder_classifier")):
        folder.mkdir()
        (folder / "provenance.json").write_text(json.dumps({"kind": kind, "word": "never"}), encoding="utf-8")
        (folder / "model.json").write_text("{}", encoding="utf-8")
    seen: list[Path] = []

    def factory(ctx: PredictorContext) -> KeywordVerdict:
        seen.append(ctx.artifact())
        return KeywordVerdict(KeywordOptions(word=ctx.provenance()["word"]))

    register_predictor(
        "veracity", "artifact_rule", factory, artifact_kind="keyword_rule", default_artifact=good, options=Options
    )
    try:
        verifier = Verifier(config_with({"predictor": "artifact_rule"}), backends={"default": FakeBackend()})
        result = verifier.verify(CLAIM, EVIDENCE, force=True)
        assert result.veracity is not None and result.veracity.label == "REFUTED"
        assert seen == [good]
        assert result.provenance.prompts["veracity"].startswith("artifact_rule:good#")
        with pytest.raises(
            GraphBuildError,
            match=r"veracity\.artifact_rule: .*wrong is not a 'keyword_rule' artifact "
            r"\(provenance kind 'encoder_classifier'\)",
        ):
            Verifier(config_with({"predictor": "artifact_rule", "options": {"artifact": str(wrong)}}))
    finally:
        unregister_predictor("veracity", "artifact_rule")


def test_a_registered_stance_predictors_labels_are_checked_and_its_relevance_used() -> None:
    class Stance:
        labels = ("SUPPORT", "REFUTE", "NEUTRAL")

        def __init__(self) -> None:
            self.stats = BackendStats()

        def predict(self, inputs: Sequence[Mapping[str, Any]]) -> list[LabelScores]:
            raise AssertionError("stance_and_relevance is used")

        def stance_and_relevance(self, claim: str, sentences: Sequence[str]) -> tuple[list[LabelScores], list[float]]:
            self.stats.calls += len(sentences)
            self.stats.forward_passes += 1
            scores = [LabelScores(label="REFUTE", probabilities={"REFUTE": 1.0}) for _ in sentences]
            return scores, [0.1 * (i + 1) for i in range(len(sentences))]

        def provenance(self) -> ModelProvenance:
            return ModelProvenance(backend="test", model="stance")

        def close(self) -> None:
            pass

    register_predictor("evidence_stance", "relevance_rule", lambda ctx: Stance(), labels=Stance.labels)
    try:
        config = PipelineConfig.from_dict(
            {
                **PROMPTED,
                "evidence_stance": {"predictor": "relevance_rule", "max_evidence": 1},
                "stages": ["evidence_stance"],
            }
        )
        result = Verifier(config, backends={"default": FakeBackend()}).verify(CLAIM, EVIDENCE)
        assert [s.used for s in result.evidence_stances] == [False, True]  # the most relevant kept
        assert [s.relevance for s in result.evidence_stances] == [pytest.approx(0.1), pytest.approx(0.2)]
        assert result.provenance.models["evidence_stance"] == ModelProvenance(backend="test", model="stance")
        assert result.provenance.model_calls["evidence_stance"] == 2  # its own counters
        with pytest.raises(
            GraphBuildError, match=r"evidence_stance\.support_label is not a label of the relevance_rule predictor"
        ):
            Verifier(
                PipelineConfig.from_dict(
                    {**PROMPTED, "evidence_stance": {"predictor": "relevance_rule", "support_label": "PRO"}}
                )
            )
    finally:
        unregister_predictor("evidence_stance", "relevance_rule")


# --- registration rules ---------------------------------------------------------------------------


def test_registering_the_same_spec_again_is_a_no_op_and_another_one_an_error() -> None:
    first = register_predictor("veracity", "keyword", make_keyword, options=KeywordOptions)
    try:
        assert register_predictor("veracity", "keyword", make_keyword, options=KeywordOptions) == first
        with pytest.raises(
            ConfigError, match=r"'keyword' is already registered; unregister_predictor\('veracity', 'keyword'\) first"
        ):
            register_predictor("veracity", "keyword", lambda ctx: KeywordVerdict(KeywordOptions()))
        with pytest.raises(ConfigError, match="already registered"):
            register_predictor("veracity", "keyword", make_keyword)  # other options
        register_predictor(
            "check_worthiness", "keyword", make_keyword, options=KeywordOptions
        )  # another stage: its own
        unregister_predictor("check_worthiness", "keyword")
    finally:
        unregister_predictor("veracity", "keyword")
    assert "keyword" not in predictor_kinds("veracity") and "keyword" not in registered_predictors("veracity")
    with pytest.raises(ConfigError, match="unknown veracity predictor 'keyword'"):
        config_with({"predictor": "keyword"})
    unregister_predictor("veracity", "keyword")  # an unknown kind: ignored


def test_built_in_kinds_are_neither_replaced_nor_removed() -> None:
    with pytest.raises(
        ConfigError, match="veracity predictor 'encoder' is built in; register yours under another kind"
    ):
        register_predictor("veracity", "encoder", make_keyword)
    with pytest.raises(ConfigError, match="'aggregate' is built in and cannot be removed"):
        unregister_predictor("veracity", "aggregate")
    assert registered_predictors("veracity") == ("aggregate", "encoder", "lora", "prompt", "stance_features")


def test_registration_mistakes_are_errors_saying_what_to_do() -> None:
    with pytest.raises(ConfigError, match="a predictor serves one of check_worthiness, evidence_stance, veracity"):
        register_predictor("justify", "mine", make_keyword)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="use letters"):
        register_predictor("veracity", "my kind", make_keyword)
    with pytest.raises(ConfigError, match="factory must be callable"):
        register_predictor("veracity", "mine", None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="inputs must be a sequence of field names"):
        register_predictor("veracity", "mine", make_keyword, inputs="claim")
    with pytest.raises(ConfigError, match=r"needs names earlier stages \(check_worthiness, evidence_stance, justify\)"):
        register_predictor("veracity", "mine", make_keyword, needs=("veracity",))
    with pytest.raises(ConfigError, match="options must be a pydantic model class"):
        register_predictor("veracity", "mine", make_keyword, options=dict)  # type: ignore[arg-type]
    assert "mine" not in predictor_kinds("veracity") and "mine" not in registered_predictors("veracity")

"""Veracity from the stances alone (``veracity.predictor: aggregate``): the rule, the graph, the config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import keyword_scorer, prompt_config

from claimflow import Verifier
from claimflow.errors import ConfigError, GraphBuildError, InputError
from claimflow.llm.fake import FakeBackend
from claimflow.predictors.stance_aggregate import StanceAggregator, side_strengths, verdict_distribution
from claimflow.types import EvidenceStance


def _stance(i: int, support: float, refute: float, relevance: float | None = None, used: bool = True) -> EvidenceStance:
    probs = {"SUPPORT": support, "REFUTE": refute, "NEUTRAL": 1 - support - refute}
    return EvidenceStance(
        index=i,
        text=f"s{i}",
        label=max(probs, key=probs.__getitem__),
        probabilities=probs,
        relevance=relevance,
        used=used,
    )


def test_the_strongest_relevant_sentence_of_each_side_sets_its_strength() -> None:
    stances = [
        _stance(0, 0.9, 0.05, relevance=0.5),
        _stance(1, 0.1, 0.8, relevance=1.0),
        _stance(2, 0.99, 0, used=False),
    ]
    s, f = side_strengths(stances, "SUPPORT", "REFUTE")
    assert s == pytest.approx(0.45) and f == pytest.approx(0.8)  # the unused sentence does not count
    s_or, f_or = side_strengths(stances, "SUPPORT", "REFUTE", "noisy_or")
    assert s_or == pytest.approx(1 - (1 - 0.45) * (1 - 0.1)) and f_or > f


@pytest.mark.parametrize(("s", "f"), [(0.0, 0.0), (0.9, 0.1), (0.3, 0.7), (1.0, 1.0), (0.5, 0.5)])
def test_the_verdict_is_a_distribution(s: float, f: float) -> None:
    three = verdict_distribution(s, f)
    assert sum(three.values()) == pytest.approx(1.0) and min(three.values()) >= 0
    two = verdict_distribution(s, f, two_way=True)
    assert set(two) == {"SUPPORTED", "REFUTED"} and sum(two.values()) == pytest.approx(1.0)


def test_irrelevant_or_neutral_evidence_is_not_enough_info_and_a_strong_refutation_refutes() -> None:
    aggregate = StanceAggregator()
    off_topic = [_stance(0, 0.9, 0.05, relevance=0.02), _stance(1, 0.05, 0.05, relevance=0.9)]
    assert aggregate.score(off_topic).label == "NOT_ENOUGH_INFO"
    assert aggregate.score([]).label == "NOT_ENOUGH_INFO"
    mixed = [_stance(0, 0.6, 0.1, relevance=0.9), _stance(1, 0.05, 0.9, relevance=0.95)]
    assert aggregate.score(mixed).label == "REFUTED"
    assert StanceAggregator(two_way=True).score(off_topic).label == "SUPPORTED"  # no NEI label: the larger side
    weak = [_stance(0, 0.45, 0.05)]
    assert StanceAggregator().score(weak).label == "NOT_ENOUGH_INFO"
    assert StanceAggregator(nei_threshold=0.4).score(weak).label == "SUPPORTED"


def test_the_aggregator_needs_the_stances() -> None:
    with pytest.raises(InputError, match="evidence_stances"):
        StanceAggregator().predict([{"claim": "x"}])


def test_in_the_graph_the_verdict_reads_only_the_used_stances() -> None:
    fake = FakeBackend(score_fn=keyword_scorer, generate_fn=lambda r: "J.")
    config = prompt_config(
        {
            "veracity": {"predictor": "aggregate"},
            "evidence_stance": {"max_evidence": 1},
            "stages": ["evidence_stance", "veracity"],
        }
    )
    claim = "Vitamin D prevents COVID-19."
    evidence = ["A trial found no reduction in infections.", "Low vitamin D went with more COVID-19."]
    result = Verifier(config, backends={"default": fake}).verify(claim, evidence)
    assert [s.used for s in result.evidence_stances] == [True, False]  # a prompted stance keeps the first K
    assert result.veracity is not None and result.veracity.label == "REFUTED"
    assert set(result.veracity.probabilities) == {"SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO"}
    assert result.provenance.prompts["veracity"] == "aggregate:max"
    assert result.provenance.model_calls["veracity"] == 0


def test_aggregate_needs_the_stance_stage_and_its_settings_need_aggregate() -> None:
    with pytest.raises(GraphBuildError, match="evidence_stance"):
        Verifier(prompt_config({"veracity": {"predictor": "aggregate"}, "stages": ["veracity"]}))
    with pytest.raises(ConfigError, match="nei_threshold"):
        prompt_config({"veracity": {"nei_threshold": 0.3}})


def _scored_file(path: Path) -> Path:
    """Scored claims as ``benchmarks/veracity_stances.py score`` writes them: clear stances, each label."""
    claims = []
    for i in range(30):
        for gold, probs, rel in (
            ("SUPPORTED", {"SUPPORT": 0.9, "REFUTE": 0.05, "NEUTRAL": 0.05}, 0.9),
            ("REFUTED", {"SUPPORT": 0.05, "REFUTE": 0.9, "NEUTRAL": 0.05}, 0.9),
            ("NOT_ENOUGH_INFO", {"SUPPORT": 0.3, "REFUTE": 0.3, "NEUTRAL": 0.4}, 0.05),
        ):
            jitter = (i % 5) / 100
            p = {k: max(0.0, v - jitter) if k != "NEUTRAL" else v + 2 * jitter for k, v in probs.items()}
            claims.append({"id": f"{gold}-{i}", "gold": gold, "stance": [p, p], "relevance": [rel, rel - jitter]})
    path.write_text(json.dumps({"toy": {"claims": claims}, "meta": {"artifact": "toy-stance-model"}}))
    return path


def test_a_fitted_stance_features_classifier_loads_and_serves_the_graph(tmp_path: Path) -> None:
    from claimflow.finetune.stance_features import fit_stance_features
    from claimflow.predictors.stance_aggregate import StanceFeatureClassifier

    artifact = tmp_path / "sf"
    provenance = fit_stance_features([_scored_file(tmp_path / "scored.json")], artifact)
    assert (
        provenance["kind"] == "stance_features_classifier"
        and provenance["stance_model"][0]["artifact"] == "toy-stance-model"
    )
    assert provenance["train_claims"]["toy"] == {"SUPPORTED": 30, "REFUTED": 30, "NOT_ENOUGH_INFO": 30}
    classifier = StanceFeatureClassifier(artifact)
    refuting = classifier.score([_stance(0, 0.05, 0.9, relevance=0.9)])
    assert refuting.label == "REFUTED" and sum(refuting.probabilities.values()) == pytest.approx(1.0)
    assert classifier.score([_stance(0, 0.3, 0.3, relevance=0.02)]).label == "NOT_ENOUGH_INFO"

    fake = FakeBackend(score_fn=keyword_scorer, generate_fn=lambda r: "J.")
    config = prompt_config(
        {
            "veracity": {"predictor": "stance_features", "stance_features": str(artifact)},
            "stages": ["evidence_stance", "veracity"],
        }
    )
    result = Verifier(config, backends={"default": fake}).verify(
        "Vitamin D prevents COVID-19.", ["A trial found no reduction."]
    )
    assert result.veracity is not None and set(result.veracity.probabilities) == set(provenance["labels"])
    assert result.provenance.prompts["veracity"].startswith("stance_features:sf#")


def test_a_broken_stance_features_artifact_is_a_clear_error(tmp_path: Path) -> None:
    from claimflow.errors import ModelError
    from claimflow.predictors.stance_aggregate import StanceFeatureClassifier

    (tmp_path / "model.json").write_text('{"labels": ["A"]}')
    with pytest.raises(ModelError, match="not a stance-features artifact"):
        StanceFeatureClassifier(tmp_path)
    with pytest.raises(GraphBuildError, match="not a stance-features artifact"):
        (tmp_path / "provenance.json").write_text('{"kind": "encoder_classifier"}')
        Verifier(prompt_config({"veracity": {"predictor": "stance_features", "stance_features": str(tmp_path)}}))


def test_with_no_relevant_sentence_the_stance_features_verdict_is_not_enough_info(tmp_path: Path) -> None:
    from claimflow.finetune.stance_features import fit_stance_features
    from claimflow.predictors.stance_aggregate import StanceFeatureClassifier

    artifact = tmp_path / "sf"
    fit_stance_features([_scored_file(tmp_path / "scored.json")], artifact)
    # confident refutations from sentences the relevance head calls off-topic (out of the fit's range)
    off_topic = [_stance(0, 0.02, 0.95, relevance=0.06), _stance(1, 0.05, 0.9, relevance=0.03)]
    bare = StanceFeatureClassifier(artifact).score(off_topic)
    guarded = StanceFeatureClassifier(artifact, min_relevance=0.5).score(off_topic)
    assert guarded.label == "NOT_ENOUGH_INFO" and guarded.probabilities["NOT_ENOUGH_INFO"] == pytest.approx(0.94)
    assert sum(guarded.probabilities.values()) == pytest.approx(1.0)
    ratio = bare.probabilities["REFUTED"] / bare.probabilities["SUPPORTED"]
    assert guarded.probabilities["REFUTED"] / guarded.probabilities["SUPPORTED"] == pytest.approx(ratio)
    # no relevance scores at all (a prompted stance stage): the fitted model decides alone
    unscored = [_stance(0, 0.02, 0.95)]
    assert StanceFeatureClassifier(artifact, min_relevance=0.5).score(unscored) == StanceFeatureClassifier(
        artifact
    ).score(unscored)
    # one relevant sentence: the fitted model decides alone
    relevant = [*off_topic, _stance(2, 0.05, 0.9, relevance=0.8)]
    assert StanceFeatureClassifier(artifact, min_relevance=0.5).score(relevant) == StanceFeatureClassifier(
        artifact
    ).score(relevant)


def test_min_relevance_is_a_stance_features_setting() -> None:
    from claimflow.config import VeracityConfig

    assert VeracityConfig().min_relevance == 0.1
    assert VeracityConfig(predictor="aggregate", min_relevance=0.1).predictor == "aggregate"  # a dumped default
    with pytest.raises(ValueError, match="min_relevance"):
        VeracityConfig(predictor="aggregate", min_relevance=0.3)
    with pytest.raises(ValueError, match=r"less than or equal to 0\.5"):
        VeracityConfig(min_relevance=0.8)

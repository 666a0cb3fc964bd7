from __future__ import annotations

import math

import pytest

from claimflow.verbalizers import LogitVerbalizer, TextVerbalizer


def test_logit_distribution_matches_a_hand_computed_softmax() -> None:
    verbalizer = LogitVerbalizer({"Yes": ["Yes"], "No": ["No"]})
    scores = verbalizer.from_logprobs({"Yes": math.log(0.6), "No": math.log(0.2)})
    # softmax over {log .6, log .2} = .6/.8 and .2/.8
    assert scores.label == "Yes"
    assert scores.probabilities["Yes"] == pytest.approx(0.75)
    assert scores.probabilities["No"] == pytest.approx(0.25)


def test_several_words_per_label_are_aggregated() -> None:
    words = {"Yes": ["Yes", "yes"], "No": ["No"]}
    logprobs = {"Yes": math.log(0.3), "yes": math.log(0.1), "No": math.log(0.4)}
    lse = LogitVerbalizer(words).from_logprobs(logprobs)
    assert lse.probabilities["Yes"] == pytest.approx(0.4 / 0.8)  # P(any of the words) = .3 + .1
    best = LogitVerbalizer(words, aggregation="max").from_logprobs(logprobs)
    assert best.probabilities["Yes"] == pytest.approx(0.3 / 0.7)
    mean = LogitVerbalizer(words, aggregation="mean").from_logprobs(logprobs)
    geo = math.sqrt(0.3 * 0.1)
    assert mean.probabilities["Yes"] == pytest.approx(geo / (geo + 0.4))


def test_temperature_flattens_the_distribution() -> None:
    logprobs = {"A": math.log(0.9), "B": math.log(0.1)}
    sharp = LogitVerbalizer({"A": ["A"], "B": ["B"]}).from_logprobs(logprobs)
    flat = LogitVerbalizer({"A": ["A"], "B": ["B"]}, temperature=3.0).from_logprobs(logprobs)
    assert flat.probabilities["A"] < sharp.probabilities["A"]
    assert flat.probabilities["A"] == pytest.approx(0.9 ** (1 / 3) / (0.9 ** (1 / 3) + 0.1 ** (1 / 3)))


def test_unscored_words_count_as_impossible_and_none_scored_is_a_parse_error() -> None:
    verbalizer = LogitVerbalizer({"Yes": ["Yes"], "No": ["No"]})
    partial = verbalizer.from_logprobs({"Yes": -2.0})
    assert partial.probabilities == {"Yes": 1.0, "No": 0.0}
    empty = verbalizer.from_logprobs({})
    assert empty.label is None and empty.parse_error


def test_candidates_are_unique_and_ordered() -> None:
    verbalizer = LogitVerbalizer({"A": ["x", "y"], "B": ["y", "z"]})
    assert verbalizer.candidates == ("x", "y", "z")


def test_text_verbalizer_takes_the_earliest_label_and_records_failures() -> None:
    verbalizer = TextVerbalizer.from_label_words({"Yes": ["Yes"], "No": ["No"]})
    assert verbalizer.from_text("No. Well, yes, maybe").label == "No"
    assert verbalizer.from_text("yes!").probabilities == {"Yes": 1.0, "No": 0.0}
    failed = verbalizer.from_text("I am not sure")
    assert failed.label is None and failed.raw_output == "I am not sure" and failed.parse_error


def test_text_verbalizer_matches_whole_words_only() -> None:
    verbalizer = TextVerbalizer.from_label_words({"SUPPORTED": [" true"], "REFUTED": [" false"]})
    assert verbalizer.from_text("untrue statement").label is None
    assert verbalizer.from_text("Claim Veracity: True").label == "SUPPORTED"


def test_contextual_calibration_divides_by_the_content_free_distribution() -> None:
    verbalizer = LogitVerbalizer({"Yes": ["Yes"], "No": ["No"]}, calibration={"Yes": 0.8, "No": 0.2})
    scores = verbalizer.from_logprobs({"Yes": math.log(0.6), "No": math.log(0.4)})
    # W p = (.6/.8, .4/.2) = (.75, 2.0) -> normalized (.75/2.75, 2/2.75)
    assert scores.probabilities["Yes"] == pytest.approx(0.75 / 2.75)
    assert scores.label == "No"


def test_legacy_es_rule_reproduces_the_paper_and_never_fails() -> None:
    from claimflow.verbalizers import ContainsEsVerbalizer

    rule = ContainsEsVerbalizer()
    assert rule.from_text("Yes").label == "Yes"
    assert rule.from_text("It does not matter, yes").label == "Yes"
    assert rule.from_text("Definitely worth checking").label == "No"
    assert rule.from_text("No, it is").label == "No"
    assert rule.from_text("These are opinions").label == "Yes"  # the rule's known false positive

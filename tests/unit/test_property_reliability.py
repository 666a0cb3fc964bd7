"""Property-based tests (hypothesis): verbalizers, template rendering and input cleaning, JSONL
repair/resume, and the paired statistics hold for any input, not only the hand-picked ones."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="pip install 'claimflow[dev]'")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tests.conftest import PROMPT_ONLY  # noqa: E402

from claimflow.batch import done_ids, repair_tail, run_batch  # noqa: E402
from claimflow.errors import InputError  # noqa: E402
from claimflow.evals.metrics import accuracy, macro_f1  # noqa: E402
from claimflow.evals.stats import (  # noqa: E402
    bootstrap_ci,
    holm_correction,
    mcnemar_from_counts,
    paired_bootstrap,
    permutation_test,
)
from claimflow.llm.fake import FakeBackend  # noqa: E402
from claimflow.prompts.registry import TemplateRegistry  # noqa: E402
from claimflow.prompts.sanitize import CONTROL_TOKEN, clean_text, neutralize_control_tokens  # noqa: E402
from claimflow.verbalizers.logit import LogitVerbalizer  # noqa: E402
from claimflow.verbalizers.text import TextVerbalizer  # noqa: E402
from claimflow.verifier import Verifier  # noqa: E402

FAST = settings(
    max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- verbalizers ---------------------------------------------------------------------------------

words = st.text(alphabet="abcdefghij YN", min_size=1, max_size=4)
label_words = st.dictionaries(
    st.sampled_from(["SUPPORT", "REFUTE", "NEUTRAL", "Yes", "No"]), st.lists(words, min_size=1, max_size=3), min_size=1
)
any_float = st.floats(allow_nan=True, allow_infinity=True)


@FAST
@given(
    label_words,
    st.data(),
    st.sampled_from(["logsumexp", "max", "mean"]),
    st.floats(min_value=0.01, max_value=100.0),
    st.booleans(),
)
def test_logit_verbalizer_gives_a_distribution_for_any_logits(
    mapping: dict[str, list[str]], data: st.DataObject, aggregation: Any, temperature: float, calibrate: bool
) -> None:
    every_word = sorted({w for ws in mapping.values() for w in ws})
    logprobs = data.draw(st.dictionaries(st.sampled_from(every_word), any_float))
    calibration = None
    if calibrate:
        weights = data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(mapping), max_size=len(mapping)))
        calibration = dict(zip(mapping, weights, strict=True))
    verbalizer = LogitVerbalizer(mapping, aggregation=aggregation, temperature=temperature, calibration=calibration)
    scores = verbalizer.from_logprobs(logprobs)
    if scores.label is None:
        assert scores.parse_error and scores.probabilities == {}
        assert not any(math.isfinite(v) for w, v in logprobs.items())
        return
    probabilities = scores.probabilities
    assert set(probabilities) == set(mapping)
    assert all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probabilities.values()), probabilities
    assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-9), probabilities
    assert probabilities[scores.label] == max(probabilities.values())


@FAST
@given(label_words, st.text(max_size=80))
def test_text_verbalizer_gives_one_label_or_a_parse_error(mapping: dict[str, list[str]], text: str) -> None:
    scores = TextVerbalizer.from_label_words(mapping).from_text(text)
    if scores.label is None:
        assert scores.parse_error and scores.probabilities == {}
    else:
        assert sum(scores.probabilities.values()) == 1.0 and scores.probabilities[scores.label] == 1.0


# --- templates and untrusted text ----------------------------------------------------------------

MARKERS = ["<|im_start|>", "<|im_end|>", "<|eot_id|>", "[INST]", "<</SYS>>", "</s>", "<start_of_turn>", "{{ 7*7 }}"]
hostile = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(MARKERS)), max_size=6).map("".join)
REGISTRY = TemplateRegistry(include_env=False)
TEMPLATES = [t for t in REGISTRY.all() if set(t.inputs) <= {"claim", "evidence", "sentence"} and not t.uses_gold]


@FAST
@given(st.sampled_from(TEMPLATES), hostile, st.lists(hostile, max_size=3), hostile)
def test_rendering_any_input_never_injects_a_turn_or_a_template(
    template: Any, claim: str, evidence: list[str], sentence: str
) -> None:
    values = {"claim": claim, "evidence": evidence, "sentence": sentence}
    rendered = template.render({k: v for k, v in values.items() if k in template.inputs})
    baseline = template.render({k: ("x" if k != "evidence" else ["x"]) for k in template.inputs})
    for message, plain in zip(rendered.messages, baseline.messages, strict=True):
        assert message.role == plain.role  # no turn added or changed
        # no chat marker except the template's own, and the input's Jinja is text, never evaluated
        assert len(CONTROL_TOKEN.findall(message.content)) == len(CONTROL_TOKEN.findall(plain.content))
    if "{{ 7*7 }}" in claim and "claim" in template.inputs:
        assert any("{{ 7*7 }}" in m.content for m in rendered.messages)


@FAST
@given(hostile)
def test_neutralizing_leaves_no_marker_and_is_idempotent(text: str) -> None:
    once = neutralize_control_tokens(text)
    assert CONTROL_TOKEN.search(once) is None
    assert neutralize_control_tokens(once) == once


@FAST
@given(st.text())
def test_clean_text_refuses_or_gives_text_without_control_characters(text: str) -> None:
    try:
        cleaned = clean_text(text, "the claim")
    except InputError as exc:
        assert "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text), exc
        return
    assert len(cleaned) == len(text)
    assert all(c in "\t\n\r" or not (ord(c) < 32 or 0x7F <= ord(c) <= 0x9F) for c in cleaned)
    cleaned.encode("utf-8")  # writable as UTF-8
    assert clean_text(cleaned, "the claim") == cleaned


# --- JSONL repair and resume ---------------------------------------------------------------------

records = st.lists(
    st.fixed_dictionaries({"claim": st.text(max_size=20), "n": st.integers()}), min_size=1, max_size=8
).map(lambda rows: [{"id": f"r{i}", **row} for i, row in enumerate(rows)])


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


@FAST
@given(records, st.data())
def test_a_crash_at_any_byte_keeps_exactly_the_complete_lines(rows: list[dict[str, Any]], data: st.DataObject) -> None:
    full = _jsonl(rows)
    cut = data.draw(st.integers(0, len(full)))
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.jsonl"
        out.write_bytes(full[:cut])
        repair_tail(out)
        kept = out.read_bytes()
        assert full.startswith(kept) and (kept == b"" or kept.endswith(b"\n"))
        complete = full[:cut].count(b"\n") + (1 if full[: cut + 1].endswith(b"\n") and cut < len(full) else 0)
        assert done_ids(out) == {row["id"] for row in rows[:complete]}
        repair_tail(out)
        assert out.read_bytes() == kept  # repairing twice changes nothing


VERIFIER = Verifier(PROMPT_ONLY, backends={"default": FakeBackend()})


@settings(max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 6), st.data())
def test_resuming_after_any_crash_writes_each_item_once(n: int, data: st.DataObject) -> None:
    items = [(f"c{i}", {"id": f"c{i}", "claim": f"Claim {i}.", "evidence": ["A study."]}) for i in range(n)]
    with tempfile.TemporaryDirectory() as folder:
        clean = Path(folder) / "clean.jsonl"
        run_batch(VERIFIER, items, clean)
        full = clean.read_bytes()
        out = Path(folder) / "out.jsonl"
        out.write_bytes(full[: len(full) * data.draw(st.integers(0, 1000)) // 1000])  # killed at this byte
        run_batch(VERIFIER, items, out)
        lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert sorted(line["id"] for line in lines) == [item_id for item_id, _ in sorted(items)]
        by_id = {line["id"]: line["result"]["veracity"] for line in lines}
        assert by_id == {json.loads(x)["id"]: json.loads(x)["result"]["veracity"] for x in full.splitlines()}


# --- statistics ----------------------------------------------------------------------------------

LABELS = ["A", "B", "C"]
labelled = st.integers(2, 25).flatmap(
    lambda n: st.tuples(*(st.lists(st.sampled_from(LABELS), min_size=n, max_size=n) for _ in range(3)))
)
STATS = settings(
    max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@STATS
@given(labelled, st.integers(0, 3))
def test_paired_bootstrap_is_an_interval_around_the_difference_and_antisymmetric(
    columns: tuple[list[str], list[str], list[str]], seed: int
) -> None:
    gold, a, b = columns
    metric = macro_f1(LABELS)
    ab = paired_bootstrap(gold, a, b, metric, n_resamples=200, seed=seed)
    ba = paired_bootstrap(gold, b, a, metric, n_resamples=200, seed=seed)
    assert math.isclose(ab.difference, ab.metric_a - ab.metric_b, abs_tol=1e-12)
    assert ab.ci_low <= ab.ci_high and ab.ci_low >= -1.0 and ab.ci_high <= 1.0
    assert math.isclose(ab.ci_low, -ba.ci_high, abs_tol=1e-9) and math.isclose(ab.ci_high, -ba.ci_low, abs_tol=1e-9)
    same = paired_bootstrap(gold, a, a, metric, n_resamples=200, seed=seed)
    assert same.difference == same.ci_low == same.ci_high == 0.0


@STATS
@given(labelled, st.integers(0, 3))
def test_permutation_p_is_a_probability_and_one_for_identical_systems(
    columns: tuple[list[str], list[str], list[str]], seed: int
) -> None:
    gold, a, b = columns
    result = permutation_test(gold, a, b, accuracy, n_resamples=200, seed=seed)
    assert 0.0 < result.p_value <= 1.0
    assert permutation_test(gold, a, a, accuracy, n_resamples=200, seed=seed).p_value == 1.0


@STATS
@given(st.integers(0, 60), st.integers(0, 60), st.sampled_from([None, True, False]))
def test_mcnemar_p_is_a_probability_and_symmetric(a_only: int, b_only: int, exact: bool | None) -> None:
    one = mcnemar_from_counts(a_only, b_only, exact=exact)
    other = mcnemar_from_counts(b_only, a_only, exact=exact)
    assert 0.0 <= one.p_value <= 1.0 and math.isclose(one.p_value, other.p_value, rel_tol=1e-12, abs_tol=1e-15)
    if a_only == b_only and one.exact:  # (the continuity-corrected chi-squared is (0 - 1)^2 / n then, as statsmodels)
        assert one.p_value == 1.0


@STATS
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12), st.floats(0.001, 0.2))
def test_holm_adjusted_p_values_are_bounded_monotone_and_decide_rejection(p_values: list[float], alpha: float) -> None:
    result = holm_correction(p_values, alpha=alpha)
    assert all(p <= adj <= 1.0 for p, adj in zip(p_values, result.adjusted, strict=True))
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [result.adjusted[i] for i in order]
    assert adjusted == sorted(adjusted)
    assert all(reject == (adj <= alpha) for reject, adj in zip(result.reject, result.adjusted, strict=True))


@STATS
@given(labelled)
def test_bootstrap_ci_of_one_system_is_an_interval(columns: tuple[list[str], list[str], list[str]]) -> None:
    gold, a, _ = columns
    low, high = bootstrap_ci(gold, a, accuracy, n_resamples=200)
    assert 0.0 <= low <= high <= 1.0

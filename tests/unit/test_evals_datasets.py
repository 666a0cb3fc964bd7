"""Dataset loaders on small hand-written fixtures in each dataset's real format; label maps."""

from __future__ import annotations

from pathlib import Path

import pytest

from claimflow.errors import InputEncodingError, InputError
from claimflow.evals.datasets import (
    DATASETS,
    DataFormatError,
    DataNotFoundError,
    Example,
    load_claimbuster,
    load_dataset,
    load_jsonl,
    parse_abstract,
    resolve_data_dir,
    write_jsonl,
)
from claimflow.evals.labels import (
    CHECK_WORTHINESS_LABELS,
    LABEL_MAPS,
    STANCE_LABELS,
    VERACITY_LABELS,
    LabelMap,
    UnknownLabelError,
    label_map,
    map_label,
)

DATA = Path(__file__).parent.parent / "fixtures" / "evals"


def by_id(examples: list[Example]) -> dict[str, Example]:
    return {e.id: e for e in examples}


# --- loaders -------------------------------------------------------------------------------------


def test_checkthat2024_loads_and_unquotes_csv_leftovers() -> None:
    train = load_dataset("checkthat2024_en", "train", DATA)
    assert [e.id for e in train] == ["101", "102", "103", "104"]
    assert [e.label for e in train] == ["Yes", "No", "Yes", "No"]
    quoted = by_id(train)["103"]
    assert quoted.claim == 'We cut taxes, and "growth" doubled.'
    assert quoted.meta["raw_text"] == '"We cut taxes, and ""growth"" doubled."'
    assert by_id(train)["101"].meta == {}
    assert all(e.evidence == [] and e.evidence_labels is None and e.source == "checkthat2024_en" for e in train)
    assert len(load_dataset("checkthat2024_en", "dev", DATA)) == 2
    assert len(load_dataset("checkthat2024_en", "dev-test", DATA)) == 2  # a blank last line is skipped


def test_covidfact_keeps_evidence_lists_and_makes_ids() -> None:
    train = load_dataset("covidfact", "train", DATA)
    assert [e.id for e in train] == ["covidfact-train-0", "covidfact-train-1"]
    assert train[0].label == "SUPPORTED" and train[1].label == "REFUTED"
    assert train[0].evidence == [
        "A lab study found masks cut droplet spread sharply.",
        "The effect held for cloth masks.",
    ]
    assert train[0].meta["url"] == "https://example.org/masks"
    dev = load_dataset("covidfact", "dev", DATA)
    assert len(dev) == 1 and len(dev[0].evidence) == 3 and dev[0].split == "dev"


def test_parse_abstract_reads_numpy_repr_lists() -> None:
    text = "['One.'\n 'It\\'s two.' \"Say \\\"three\\\".\"]"
    assert parse_abstract(text) == ["One.", "It's two.", 'Say "three".']
    assert parse_abstract("[]") == []
    with pytest.raises(DataFormatError):
        parse_abstract("['a', 1]")


def test_scifact_evidence_is_every_cited_sentence_with_rationale_labels() -> None:
    train = by_id(load_dataset("scifact", "train", DATA))
    supported = train["0"]
    assert supported.label == "SUPPORT"
    assert supported.evidence == [
        "Vitamin X was given to 40 adults.",
        "Bone density rose in the treated group.",
        "The control group's density did not change.",
    ]
    assert supported.evidence_labels == ["NEI", "SUPPORT", "NEI"]
    refuted = train["1"]  # two cited abstracts, in cited_doc_ids order
    assert refuted.label == "REFUTE"
    assert refuted.evidence_labels == ["REFUTE", "NEI", "NEI"]
    assert refuted.meta["evidence_doc_ids"] == ["22", "22", "33"]
    assert refuted.meta["evidence_sentence_index"] == [0, 1, 0]
    nei = train["2"]
    assert nei.label == "NEI" and nei.evidence == ["Enzyme Q is found in yeast."] and nei.evidence_labels == ["NEI"]
    dev = load_dataset("scifact", "dev", DATA)
    assert dev[0].label == "REFUTE"  # CONTRADICT (original SciFact spelling) is read as REFUTE
    assert dev[0].evidence_labels == ["NEI", "REFUTE", "REFUTE"]


def test_scifact_missing_cited_doc_is_a_format_error(tmp_path: Path) -> None:
    (tmp_path / "scifact").mkdir()
    (tmp_path / "scifact" / "corpus.csv").write_text("doc_id,title,abstract,structured\n1,T,['A.'],False\n")
    (tmp_path / "scifact" / "claims_dev.jsonl").write_text(
        '{"id": 1, "claim": "c", "evidence": {}, "cited_doc_ids": [2]}\n'
    )
    with pytest.raises(DataFormatError, match="not in the corpus"):
        load_dataset("scifact", "dev", tmp_path)


def test_climate_fever_has_five_evidence_with_stances() -> None:
    examples = by_id(load_dataset("climate_fever", "dev", DATA))
    first = examples["7"]
    assert first.label == "SUPPORTS"
    assert len(first.evidence) == 5
    assert first.evidence_labels == ["SUPPORTS", "NOT_ENOUGH_INFO", "NOT_ENOUGH_INFO", "SUPPORTS", "REFUTES"]
    assert first.meta["evidence_ids"][0] == "Sea level:1"
    assert first.meta["votes"][0] == ["SUPPORTS", "SUPPORTS", None, None, None]
    assert examples["8"].label == "DISPUTED"


def test_healthver_groups_pairs_by_claim_and_reads_a_bom() -> None:
    examples = load_dataset("healthver", "dev", DATA)
    assert [e.claim for e in examples] == ["Zinc shortens COVID-19 recovery", "Handwashing helps prevent infection"]
    zinc = examples[0]
    assert zinc.id == "healthver-10"
    assert zinc.label is None
    assert zinc.evidence_labels == ["Refutes", "Neutral", "Refutes"]
    assert zinc.meta["pair_ids"] == ["10", "11", "13"]
    assert zinc.meta["topic_ip"] == "3"
    assert sum(len(e.evidence) for e in examples) == 4


def test_claimbuster_dedupes_against_checkthat_by_id_and_text() -> None:
    assert [e.id for e in load_dataset("claimbuster", "two_class_train", DATA)] == ["901", "902"]  # 101 is CT24's
    assert [e.id for e in load_dataset("claimbuster", "two_class_test", DATA)] == ["903"]
    clef19 = load_dataset("claimbuster", "clef19_train", DATA)  # "Good evening." / "Let me answer that." are CT24's
    assert [(e.claim, e.label) for e in clef19] == [("Taxes went up, then down.", "1")]
    assert clef19[0].id == "clef19:20160101_debate.tsv:2" and clef19[0].meta["speaker"] == "SMITH"
    t1 = load_dataset("claimbuster", "clef20_t1_train", DATA)
    assert [(e.id, e.label) for e in t1] == [("clef20t1:5001", "1"), ("clef20t1:5002", "0")]
    assert [e.label for e in load_dataset("claimbuster", "clef20_t1_test", DATA)] == ["0"]  # claim_worthiness column
    assert [e.claim for e in load_dataset("claimbuster", "clef20_t5_train", DATA)] == [
        "Thank you.",
        "We built 300 new schools.",
    ]
    assert all(e.source == "claimbuster" for e in t1)
    assert t1[0].meta["subset"] == "clef20_t1_train"


def test_claimbuster_all_joins_files_without_duplicates() -> None:
    everything = load_dataset("claimbuster", "all", DATA)
    texts = [e.claim for e in everything]
    assert len(texts) == len(set(texts)) == 12
    assert texts.count("Exports grew by ten percent.") == 1  # in two_class train and kfold


def test_claimbuster_without_dedupe_keeps_everything() -> None:
    assert [e.id for e in load_claimbuster("two_class_train", DATA, dedupe=False)] == ["101", "901", "902"]


def test_registry_lists_every_dataset_and_split() -> None:
    assert set(DATASETS) == {"checkthat2024_en", "covidfact", "scifact", "climate_fever", "healthver", "claimbuster"}
    for name, info in DATASETS.items():
        for split in info.splits:
            examples = load_dataset(name, split, DATA)
            assert all(isinstance(e, Example) and e.split == split for e in examples)
            assert len({e.id for e in examples}) == len(examples), (name, split)


def test_unknown_dataset_or_split_names_the_choices() -> None:
    with pytest.raises(InputError, match="covidfact"):
        load_dataset("nope", "dev", DATA)
    with pytest.raises(InputError, match="train, dev"):
        load_dataset("covidfact", "test", DATA)


# --- data folder ---------------------------------------------------------------------------------


def test_data_dir_from_argument_env_or_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_data_dir(DATA) == DATA
    monkeypatch.setenv("CLAIMFLOW_DATA", str(DATA))
    assert len(load_dataset("covidfact", "dev")) == 1
    monkeypatch.delenv("CLAIMFLOW_DATA")
    project = tmp_path / "project"
    (tmp_path / "shared" / "data").mkdir(parents=True)
    project.mkdir()
    monkeypatch.chdir(project)
    assert resolve_data_dir().resolve() == (tmp_path / "shared" / "data").resolve()


def test_missing_data_dir_names_the_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAIMFLOW_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataNotFoundError, match="CLAIMFLOW_DATA"):
        load_dataset("covidfact", "dev")
    with pytest.raises(DataNotFoundError, match="CLAIMFLOW_DATA"):
        load_dataset("covidfact", "dev", tmp_path / "absent")
    with pytest.raises(DataNotFoundError, match="covidfact"):  # folder exists, file does not
        load_dataset("covidfact", "dev", tmp_path)
    assert issubclass(DataNotFoundError, InputError)


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "covidfact").mkdir()
    path = tmp_path / "covidfact" / "dev.jsonl"
    path.write_text('{"claim": "c", "label": "SUPPORTED", "evidence": []}\n{not json\n')
    with pytest.raises(DataFormatError, match=r"dev\.jsonl:2"):
        load_dataset("covidfact", "dev", tmp_path)
    path.write_text('{"claim": "c", "evidence": []}\n')
    with pytest.raises(DataFormatError, match="label"):
        load_dataset("covidfact", "dev", tmp_path)
    path.write_bytes(b'{"claim": "caf\xe9", "label": "SUPPORTED", "evidence": []}\n')
    with pytest.raises(InputEncodingError):
        load_dataset("covidfact", "dev", tmp_path)


# --- common-schema JSONL -------------------------------------------------------------------------


def test_load_jsonl_reads_the_common_schema() -> None:
    examples = load_jsonl(DATA / "common" / "examples.jsonl")
    assert [e.id for e in examples] == ["a", "b"]
    assert examples[0].evidence_labels == ["REFUTE"] and examples[0].meta == {"note": "toy"}
    assert examples[1].evidence == [] and examples[1].label is None


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    examples = load_dataset("scifact", "train", DATA) + load_dataset("healthver", "dev", DATA)
    path = tmp_path / "out.jsonl"
    write_jsonl(examples, path)
    assert load_jsonl(path) == examples


def test_load_jsonl_rejects_other_shapes(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "x", "claim": "c", "split": "dev", "source": "s", "colour": "red"}\n')
    with pytest.raises(DataFormatError, match=r"bad\.jsonl:1"):
        load_jsonl(path)
    path.write_text('{"id": "x", "claim": "c", "evidence": ["e"], "evidence_labels": [], "split": "d", "source": "s"}')
    with pytest.raises(DataFormatError, match="evidence labels"):
        load_jsonl(path)


def test_examples_are_frozen() -> None:
    example = load_jsonl(DATA / "common" / "examples.jsonl")[0]
    with pytest.raises(ValueError):
        example.claim = "changed"  # type: ignore[misc]


# --- label maps ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "task", "source", "target"),
    [
        ("checkthat2024_en", "check_worthiness", "Yes", "Yes"),
        ("checkthat2024_en", "check_worthiness", "No", "No"),
        ("claimbuster", "check_worthiness", "1", "Yes"),
        ("claimbuster", "check_worthiness", "0", "No"),
        ("covidfact", "veracity", "SUPPORTED", "SUPPORTED"),
        ("covidfact", "veracity", "REFUTED", "REFUTED"),
        ("scifact", "veracity", "SUPPORT", "SUPPORTED"),
        ("scifact", "veracity", "REFUTE", "REFUTED"),
        ("scifact", "veracity", "CONTRADICT", "REFUTED"),
        ("scifact", "veracity", "NEI", "NOT_ENOUGH_INFO"),
        ("scifact", "stance", "NEI", "NEUTRAL"),
        ("scifact", "stance", "SUPPORT", "SUPPORT"),
        ("climate_fever", "veracity", "SUPPORTS", "SUPPORTED"),
        ("climate_fever", "veracity", "REFUTES", "REFUTED"),
        ("climate_fever", "veracity", "NOT_ENOUGH_INFO", "NOT_ENOUGH_INFO"),
        ("climate_fever", "veracity", "DISPUTED", None),
        ("climate_fever", "stance", "NOT_ENOUGH_INFO", "NEUTRAL"),
        ("climate_fever", "stance", "REFUTES", "REFUTE"),
        ("healthver", "stance", "Supports", "SUPPORT"),
        ("healthver", "stance", "Refutes", "REFUTE"),
        ("healthver", "stance", "Neutral", "NEUTRAL"),
    ],
)
def test_label_maps(dataset: str, task: str, source: str, target: str | None) -> None:
    assert map_label(dataset, task, source) == target  # type: ignore[arg-type]


def test_disputed_policy_is_explicit() -> None:
    default = label_map("climate_fever", "veracity")
    assert default.excluded == frozenset({"DISPUTED"})
    as_nei = label_map("climate_fever", "veracity", disputed="not_enough_info")
    assert as_nei("DISPUTED") == "NOT_ENOUGH_INFO" and as_nei.excluded == frozenset()
    with pytest.raises(InputError):
        label_map("climate_fever", "veracity", disputed="maybe")  # type: ignore[arg-type]


def test_unknown_labels_raise_never_guess() -> None:
    with pytest.raises(UnknownLabelError, match="'yes'"):
        map_label("checkthat2024_en", "check_worthiness", "yes")
    with pytest.raises(UnknownLabelError, match="DISPUTED"):
        map_label("climate_fever", "stance", "DISPUTED")
    with pytest.raises(UnknownLabelError, match="no gold"):
        map_label("healthver", "stance", None)
    with pytest.raises(UnknownLabelError, match="no veracity label map"):
        label_map("healthver", "veracity")
    assert issubclass(UnknownLabelError, InputError)


def test_every_map_covers_its_fixture_labels_and_targets_its_task() -> None:
    targets = {"check_worthiness": CHECK_WORTHINESS_LABELS, "stance": STANCE_LABELS, "veracity": VERACITY_LABELS}
    for (dataset, task), mapping in LABEL_MAPS.items():
        assert {t for t in mapping.table.values() if t is not None} <= set(targets[task])
        for split in DATASETS[dataset].splits:
            for example in load_dataset(dataset, split, DATA):
                labels = example.evidence_labels if task == "stance" else [example.label]
                mapping.map_all(labels or [])


def test_label_map_rejects_targets_outside_the_task() -> None:
    with pytest.raises(ValueError, match="MAYBE"):
        LabelMap("x", "check_worthiness", {"m": "MAYBE"})

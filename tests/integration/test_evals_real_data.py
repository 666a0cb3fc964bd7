"""Every loader on the real data in ``$CLAIMFLOW_DATA`` (default ``../shared/data``); counts from its README."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from claimflow.evals.datasets import DATASETS, Example, load_dataset
from claimflow.evals.labels import LABEL_MAPS

pytestmark = pytest.mark.data


def _data_dir() -> Path | None:
    configured = os.environ.get("CLAIMFLOW_DATA")
    repo = Path(__file__).resolve().parents[2]
    candidates = (
        [Path(configured)] if configured else [Path.cwd() / ".." / "shared" / "data", repo.parent / "shared" / "data"]
    )
    return next((path for path in candidates if (path / "checkthat2024_en").is_dir()), None)


DATA = _data_dir()


@pytest.fixture(scope="module")
def data_dir() -> Path:
    if DATA is None:
        pytest.skip("real datasets not found: set CLAIMFLOW_DATA or put them in ../shared/data")
    return DATA


@pytest.fixture(scope="module")
def loaded(data_dir: Path) -> dict[tuple[str, str], list[Example]]:
    return {(name, split): load_dataset(name, split, data_dir) for name in DATASETS for split in DATASETS[name].splits}


@pytest.mark.parametrize(
    ("split", "total", "yes", "unquoted"),
    [("train", 22_501, 5_413, 11_234), ("dev", 1_032, 238, 450), ("dev-test", 318, 108, 162)],
)
def test_checkthat2024_counts(
    loaded: dict[tuple[str, str], list[Example]], split: str, total: int, yes: int, unquoted: int
) -> None:
    examples = loaded[("checkthat2024_en", split)]
    assert len(examples) == total
    assert Counter(e.label for e in examples)["Yes"] == yes
    changed = [e for e in examples if "raw_text" in e.meta]
    assert len(changed) == unquoted
    assert all(e.meta["raw_text"] == '"' + e.claim.replace('"', '""') + '"' for e in changed)  # lossless


def test_covidfact_counts(loaded: dict[tuple[str, str], list[Example]]) -> None:
    assert len(loaded[("covidfact", "train")]) == 3_250
    assert len(loaded[("covidfact", "dev")]) == 419
    assert all(1 <= len(e.evidence) <= 5 for e in loaded[("covidfact", "dev")])


def test_scifact_counts(loaded: dict[tuple[str, str], list[Example]]) -> None:
    train, dev = loaded[("scifact", "train")], loaded[("scifact", "dev")]
    assert (len(train), len(dev)) == (809, 300)
    assert Counter(e.label for e in dev) == {"SUPPORT": 124, "NEI": 112, "REFUTE": 64}
    assert all(e.evidence and e.evidence_labels for e in train + dev)
    rationale = [e for e in dev if e.label != "NEI"]
    assert all(e.label in (e.evidence_labels or []) for e in rationale)


def test_climate_fever_counts(loaded: dict[tuple[str, str], list[Example]]) -> None:
    examples = loaded[("climate_fever", "dev")]
    assert len(examples) == 1_217
    assert all(len(e.evidence) == 5 for e in examples)
    assert Counter(e.label for e in examples)["DISPUTED"] > 0


def test_healthver_counts(loaded: dict[tuple[str, str], list[Example]]) -> None:
    examples = loaded[("healthver", "dev")]
    assert sum(len(e.evidence) for e in examples) == 1_917
    assert len({e.claim for e in examples}) == len(examples)


def test_claimbuster_is_deduplicated_against_checkthat(loaded: dict[tuple[str, str], list[Example]]) -> None:
    ct_ids = {e.id for split in ("train", "dev", "dev-test") for e in loaded[("checkthat2024_en", split)]}
    extras = loaded[("claimbuster", "all")]
    assert extras and not ct_ids & {e.id for e in extras}
    assert len({e.claim.casefold() for e in extras}) == len(extras)
    assert {e.label for e in extras} == {"0", "1"}


def test_every_real_label_has_a_map(loaded: dict[tuple[str, str], list[Example]]) -> None:
    for (dataset, task), mapping in LABEL_MAPS.items():
        for split in DATASETS[dataset].splits:
            for example in loaded[(dataset, split)]:
                mapping.map_all((example.evidence_labels or []) if task == "stance" else [example.label])

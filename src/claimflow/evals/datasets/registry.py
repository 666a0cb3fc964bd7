"""The registered datasets (:data:`DATASETS`: splits, tasks, loader) and :func:`load_dataset`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from claimflow.errors import InputError
from claimflow.evals.datasets.base import Example, resolve_data_dir
from claimflow.evals.datasets.checkthat import load_checkthat2024
from claimflow.evals.datasets.claimbuster import CLAIMBUSTER_SPLITS, load_claimbuster
from claimflow.evals.datasets.climate_fever import load_climate_fever
from claimflow.evals.datasets.covidfact import load_covidfact
from claimflow.evals.datasets.healthver import load_healthver
from claimflow.evals.datasets.scifact import load_scifact


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset: its splits, the tasks its labels serve, and its loader."""

    name: str
    splits: tuple[str, ...]
    tasks: tuple[str, ...]
    loader: Callable[[str, Path], list[Example]]


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("checkthat2024_en", ("train", "dev", "dev-test"), ("check_worthiness",), load_checkthat2024),
        DatasetInfo("covidfact", ("train", "dev"), ("veracity",), load_covidfact),
        DatasetInfo("scifact", ("train", "dev"), ("veracity", "stance"), load_scifact),
        DatasetInfo("climate_fever", ("dev",), ("veracity", "stance"), load_climate_fever),
        DatasetInfo("healthver", ("dev",), ("stance",), load_healthver),
        DatasetInfo("claimbuster", CLAIMBUSTER_SPLITS, ("check_worthiness",), load_claimbuster),
    )
}


def load_dataset(name: str, split: str, data_dir: str | Path | None = None) -> list[Example]:
    """Load split ``split`` of registered dataset ``name`` (see :data:`DATASETS`)."""
    info = DATASETS.get(name)
    if info is None:
        raise InputError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    if split not in info.splits:
        raise InputError(f"dataset {name!r} has no split {split!r}; choose from {', '.join(info.splits)}")
    return info.loader(split, resolve_data_dir(data_dir))

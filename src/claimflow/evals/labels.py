"""Explicit maps from each dataset's labels to the pipeline's three label sets.

Every map is a closed table: a label outside it raises :class:`UnknownLabelError`, never a guess.
A label mapped to ``None`` is excluded on purpose (e.g. Climate-FEVER DISPUTED by default).

Policies:

- check-worthiness: CT24 Yes/No as is; ClaimBuster/CLEF ``1``/``0`` -> Yes/No.
- stance: SUPPORT(S)/Supports -> SUPPORT, REFUTE(S)/CONTRADICT/Refutes -> REFUTE,
  NOT_ENOUGH_INFO/Neutral/NEI (a SciFact sentence outside every rationale) -> NEUTRAL.
- veracity: SUPPORTED/SUPPORTS/SUPPORT -> SUPPORTED, REFUTED/REFUTES/REFUTE/CONTRADICT -> REFUTED,
  NOT_ENOUGH_INFO/NEI -> NOT_ENOUGH_INFO. Climate-FEVER DISPUTED (evidence both ways) has no
  counterpart: ``disputed="exclude"`` (default) maps it to ``None``; ``disputed="not_enough_info"``
  maps it to NOT_ENOUGH_INFO.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from claimflow.errors import InputError

Task = Literal["check_worthiness", "stance", "veracity"]
DisputedPolicy = Literal["exclude", "not_enough_info"]

CHECK_WORTHINESS_LABELS: tuple[str, ...] = ("Yes", "No")
STANCE_LABELS: tuple[str, ...] = ("SUPPORT", "REFUTE", "NEUTRAL")
VERACITY_LABELS: tuple[str, ...] = ("SUPPORTED", "REFUTED", "NOT_ENOUGH_INFO")
TASK_LABELS: Mapping[Task, tuple[str, ...]] = MappingProxyType(
    {"check_worthiness": CHECK_WORTHINESS_LABELS, "stance": STANCE_LABELS, "veracity": VERACITY_LABELS}
)


class UnknownLabelError(InputError):
    """A label is not in the map of its dataset and task, or no map exists for them."""


@dataclass(frozen=True)
class LabelMap:
    """A closed map from ``dataset``'s labels to ``task``'s label set; ``None`` means excluded."""

    dataset: str
    task: Task
    table: Mapping[str, str | None] = field(repr=False)

    def __post_init__(self) -> None:
        allowed = TASK_LABELS[self.task]
        bad = {target for target in self.table.values() if target is not None and target not in allowed}
        if bad:
            raise ValueError(f"{self.dataset}/{self.task}: targets {sorted(bad)} are not in {allowed}")
        object.__setattr__(self, "table", MappingProxyType(dict(self.table)))

    @property
    def labels(self) -> tuple[str, ...]:
        """The pipeline label set this map targets."""
        return TASK_LABELS[self.task]

    @property
    def excluded(self) -> frozenset[str]:
        """Source labels deliberately mapped to ``None``."""
        return frozenset(source for source, target in self.table.items() if target is None)

    def __call__(self, label: str | None) -> str | None:
        """The pipeline label of ``label``; ``None`` when the policy excludes it."""
        if label is None:
            raise UnknownLabelError(f"{self.dataset}: no gold {self.task} label on this item (label is None)")
        try:
            return self.table[label]
        except KeyError:
            raise UnknownLabelError(
                f"{self.dataset}: unknown {self.task} label {label!r}; known: {sorted(self.table)}"
            ) from None

    def map_all(self, labels: Iterable[str | None]) -> list[str | None]:
        """Map every label (raising on the first unknown one)."""
        return [self(label) for label in labels]


_YES_NO: dict[str, str | None] = {"Yes": "Yes", "No": "No"}
_ONE_ZERO: dict[str, str | None] = {"1": "Yes", "0": "No"}

_TABLES: dict[tuple[str, Task], dict[str, str | None]] = {
    ("checkthat2024_en", "check_worthiness"): _YES_NO,
    ("claimbuster", "check_worthiness"): _ONE_ZERO,
    ("covidfact", "veracity"): {"SUPPORTED": "SUPPORTED", "REFUTED": "REFUTED"},
    ("scifact", "veracity"): {
        "SUPPORT": "SUPPORTED",
        "REFUTE": "REFUTED",
        "CONTRADICT": "REFUTED",
        "NEI": "NOT_ENOUGH_INFO",
    },
    ("scifact", "stance"): {"SUPPORT": "SUPPORT", "REFUTE": "REFUTE", "CONTRADICT": "REFUTE", "NEI": "NEUTRAL"},
    ("climate_fever", "veracity"): {
        "SUPPORTS": "SUPPORTED",
        "REFUTES": "REFUTED",
        "NOT_ENOUGH_INFO": "NOT_ENOUGH_INFO",
        "DISPUTED": None,
    },
    ("climate_fever", "stance"): {"SUPPORTS": "SUPPORT", "REFUTES": "REFUTE", "NOT_ENOUGH_INFO": "NEUTRAL"},
    ("healthver", "stance"): {"Supports": "SUPPORT", "Refutes": "REFUTE", "Neutral": "NEUTRAL"},
}

LABEL_MAPS: Mapping[tuple[str, Task], LabelMap] = MappingProxyType(
    {(dataset, task): LabelMap(dataset, task, table) for (dataset, task), table in _TABLES.items()}
)
"""Every map with its default policy, by ``(dataset, task)``."""


def label_map(dataset: str, task: Task, *, disputed: DisputedPolicy = "exclude") -> LabelMap:
    """The map for ``dataset``'s labels on ``task``; ``disputed`` sets the Climate-FEVER DISPUTED policy."""
    found = LABEL_MAPS.get((dataset, task))
    if found is None:
        known = ", ".join(f"{d}/{t}" for d, t in LABEL_MAPS)
        raise UnknownLabelError(f"no {task} label map for dataset {dataset!r}; maps exist for: {known}")
    if disputed not in ("exclude", "not_enough_info"):
        raise InputError(f"disputed must be 'exclude' or 'not_enough_info', not {disputed!r}")
    if disputed == "not_enough_info" and "DISPUTED" in found.table:
        return LabelMap(dataset, task, {**found.table, "DISPUTED": "NOT_ENOUGH_INFO"})
    return found


def map_label(dataset: str, task: Task, label: str | None, *, disputed: DisputedPolicy = "exclude") -> str | None:
    """``label`` of ``dataset`` on ``task``'s label set (``None`` when excluded by policy)."""
    return label_map(dataset, task, disputed=disputed)(label)

"""Options and helpers shared by the CLI's commands: the pipeline config and the stage subset."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, cast

import typer

from claimflow.config import STAGE_ORDER, PipelineConfig, StageName
from claimflow.errors import ConfigError

__all__ = [
    "ActorsOpt",
    "ConfigOpt",
    "CpusPerActorOpt",
    "Engine",
    "EngineOpt",
    "GpusPerActorOpt",
    "RayAddressOpt",
    "config_from",
    "stages_from",
]


def config_from(path: Path | None) -> PipelineConfig:
    return PipelineConfig.from_yaml(path) if path else PipelineConfig()


def stages_from(text: str | None) -> tuple[StageName, ...] | None:
    if not text:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in STAGE_ORDER]
    if unknown:
        raise ConfigError(f"--stages: unknown stage(s) {unknown}; choose from {list(STAGE_ORDER)}")
    return tuple(cast(StageName, n) for n in names)


ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Pipeline config (YAML).")]


class Engine(StrEnum):
    local = "local"
    ray = "ray"


EngineOpt = Annotated[Engine, typer.Option(help="local (this machine) or ray (a Ray cluster).")]
RayAddressOpt = Annotated[
    str | None, typer.Option(help="Ray: the cluster to join (default: $RAY_ADDRESS, else a local instance).")
]
ActorsOpt = Annotated[int, typer.Option(min=1, help="Ray: actors (one model load each).")]
CpusPerActorOpt = Annotated[float, typer.Option(help="Ray: CPUs reserved per actor.")]
GpusPerActorOpt = Annotated[float, typer.Option(help="Ray: GPUs reserved per actor.")]

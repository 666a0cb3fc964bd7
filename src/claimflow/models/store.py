"""The model store: named models -> verified local files.

Embedded models live inside installed PyPI packages; assembled models are concatenated from part
packages into the cache by :meth:`ModelStore.pull`. Every file with a pinned sha256 is checked
before use (the result is remembered per path, size and mtime, so a check costs one hash per file
change, not one per run).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from claimflow.errors import ModelIntegrityError, ModelNotFoundError
from claimflow.models.catalog import CATALOG, ModelSpec

log = logging.getLogger(__name__)

CACHE_ENV = "CLAIMFLOW_CACHE_DIR"
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("claimflow"))


@dataclass(frozen=True)
class ResolvedModel:
    """A model setting turned into something a backend can load."""

    name: str
    location: str
    """A local path (file or folder) or, for ``source == 'huggingface'``, a hub id."""
    source: str
    """``package:<dist>``, ``pulled``, ``path`` or ``huggingface``."""
    format: str
    sha256: str | None = None

    @property
    def path(self) -> Path:
        return Path(self.location)


@dataclass(frozen=True)
class ModelStatus:
    spec: ModelSpec
    installed: bool
    path: Path | None
    size_bytes: int | None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class ModelStore:
    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir or default_cache_dir()

    # --- locating -----------------------------------------------------------------------------

    def _package_path(self, spec: ModelSpec) -> Path | None:
        assert spec.module is not None and spec.relpath is not None
        module_spec = importlib.util.find_spec(spec.module)
        if module_spec is None or not module_spec.submodule_search_locations:
            return None
        path = Path(next(iter(module_spec.submodule_search_locations))) / spec.relpath
        return path if path.exists() else None

    def pulled_path(self, spec: ModelSpec) -> Path:
        assert spec.filename is not None
        return self.cache_dir / "models" / spec.name / spec.filename

    def local_path(self, spec: ModelSpec) -> Path | None:
        """Where the model's file is on this machine, or None when it is not installed."""
        if spec.parts:
            path = self.pulled_path(spec)
            return path if path.exists() else None
        return self._package_path(spec)

    def status(self) -> list[ModelStatus]:
        out = []
        for spec in CATALOG.values():
            path = self.local_path(spec)
            size = None
            if path is not None:
                size = path.stat().st_size if path.is_file() else _dir_size(path)
            out.append(ModelStatus(spec=spec, installed=path is not None, path=path, size_bytes=size))
        return out

    # --- resolving ----------------------------------------------------------------------------

    def resolve(self, model: str, *, verify: bool = True) -> ResolvedModel:
        """A store name, a local path, or a Hugging Face id -> :class:`ResolvedModel`."""
        if model in CATALOG:
            spec = CATALOG[model]
            path = self.local_path(spec)
            if path is None:
                raise ModelNotFoundError(f"model {model!r} is not installed: {spec.install_hint}")
            if verify and spec.sha256:
                if spec.archive is None:
                    self.verify(path, spec.sha256)
                else:  # the archive's pin was checked on pull; its files are checked against the manifest
                    self.verify_unpacked(path)
            source = "pulled" if spec.parts else f"package:{spec.package}"
            return ResolvedModel(model, str(path), source, spec.format, spec.sha256)
        candidate = Path(model).expanduser()
        if candidate.exists():
            fmt = "gguf" if candidate.suffix == ".gguf" else "hf"
            return ResolvedModel(model, str(candidate.resolve()), "path", fmt)
        if _HF_ID.match(model) and not model.endswith(".gguf"):
            return ResolvedModel(model, model, "huggingface", "hf")
        known = ", ".join(sorted(CATALOG))
        raise ModelNotFoundError(
            f"unknown model {model!r}: not a store name ({known}), not an existing path, "
            "and not a Hugging Face id of the form org/name"
        )

    # --- integrity ----------------------------------------------------------------------------

    def _verified_index(self) -> Path:
        return self.cache_dir / "verified.json"

    def verify_unpacked(self, folder: Path) -> None:
        """Check every file an unpacked archive model recorded in its manifest (hashes cached as in
        :meth:`verify`); a missing manifest or file is a :class:`ModelIntegrityError`."""
        try:
            manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelIntegrityError(
                f"{folder} has no readable {MANIFEST_NAME}: it was not unpacked by `claimflow models pull`; "
                "delete the folder and pull again"
            ) from exc
        for relative, expected in sorted(manifest["files"].items()):
            path = folder / relative
            if not path.is_file():
                raise ModelIntegrityError(f"{path} is missing: delete {folder} and `claimflow models pull` again")
            self.verify(path, expected)

    def verify(self, path: Path, expected_sha256: str) -> None:
        """Raise :class:`ModelIntegrityError` unless ``path`` hashes to ``expected_sha256``."""
        stat = path.stat()
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        index_path = self._verified_index()
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            index = {}
        if index.get(key) == expected_sha256:
            return
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise ModelIntegrityError(
                f"{path} has sha256 {actual}, expected {expected_sha256}: the file is corrupt or not the "
                "pinned release; reinstall its package (or `claimflow models pull` again)"
            )
        index[key] = actual
        try:
            index_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = index_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(index, indent=0), encoding="utf-8")
            tmp.replace(index_path)
        except OSError as exc:  # a read-only cache only costs a re-hash next time
            log.warning("could not record the verified hash in %s: %s", index_path, exc)


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


MANIFEST_NAME = "claimflow-manifest.json"


def _find_part(spec: ModelSpec, number: int, search_roots: list[Path]) -> Path:
    if spec.part_relpath is not None:
        relative = Path(spec.part_relpath.format(number=number))
    else:
        assert spec.part_module_prefix is not None
        relative = Path(f"{spec.part_module_prefix}{number}") / "data" / f"part{number:02d}.bin"
    found = next((root / relative for root in search_roots if (root / relative).exists()), None)
    if found is None and spec.part_module_prefix is not None:
        installed = importlib.util.find_spec(f"{spec.part_module_prefix}{number}")
        if installed is not None and installed.submodule_search_locations:
            path = Path(next(iter(installed.submodule_search_locations))) / "data" / f"part{number:02d}.bin"
            found = path if path.exists() else None
    if found is None:
        raise ModelNotFoundError(f"part {number} of {spec.name} ({spec.parts[number - 1]}) is not available")
    return found


def _unpack_zip(spec: ModelSpec, archive: Path, target: Path) -> None:
    """Extract the ``spec.filename`` folder of ``archive`` to ``target`` (all or nothing)."""
    staging = target.parent / f".{target.name}.unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.namelist():
                resolved = (staging / member).resolve()
                if not resolved.is_relative_to(staging.resolve()):
                    raise ModelIntegrityError(f"{spec.name}: archive member {member!r} escapes its folder")
            bundle.extractall(staging)
        folder = staging / (spec.filename or "")
        if not folder.is_dir():
            raise ModelIntegrityError(f"{spec.name}: the archive has no folder {spec.filename!r}")
        files = {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}
        manifest = {"archive_sha256": spec.sha256, "files": files}
        (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        folder.replace(target)
    except zipfile.BadZipFile as exc:
        raise ModelIntegrityError(f"{spec.name}: the joined parts are not a readable zip ({exc})") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def assemble_parts(spec: ModelSpec, search_roots: list[Path], target: Path) -> str:
    """Concatenate the part chunks (K = 1..n, found under ``search_roots`` or among the installed
    packages) into ``target`` -- or, for an archive, unpack the joined zip's model folder there;
    returns the sha256 of the joined bytes. Nothing is left at ``target`` unless the hash matches."""
    chunks = [_find_part(spec, number, search_roots) for number in range(1, len(spec.parts) + 1)]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for chunk_path in chunks:
            with chunk_path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    actual = digest.hexdigest()
    if spec.sha256 and actual != spec.sha256:
        partial.unlink()
        raise ModelIntegrityError(f"assembled {spec.name} has sha256 {actual}, expected {spec.sha256}")
    if spec.archive == "zip":
        try:
            _unpack_zip(spec, partial, target)
        finally:
            partial.unlink()
    else:
        partial.replace(target)
    return actual

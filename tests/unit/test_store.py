from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from claimflow.errors import ModelIntegrityError, ModelNotFoundError
from claimflow.models.catalog import CATALOG
from claimflow.models.store import ModelStore, assemble_parts, sha256_file


def test_unknown_model_names_list_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="smollm2-135m-instruct"):
        ModelStore(tmp_path).resolve("gpt-17")


def test_paths_and_hub_ids_resolve(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    store = ModelStore(tmp_path)
    assert store.resolve(str(gguf)).format == "gguf"
    hub = store.resolve("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert hub.source == "huggingface"


def test_opt_in_models_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=re.escape("claimflow models pull qwen2.5-coder-0.5b-instruct")):
        ModelStore(tmp_path).resolve("qwen2.5-coder-0.5b-instruct")


def test_a_corrupt_file_fails_verification_and_a_good_one_is_remembered(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "cache")
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"weights")
    good = sha256_file(blob)
    store.verify(blob, good)
    assert good in (tmp_path / "cache" / "verified.json").read_text()
    with pytest.raises(ModelIntegrityError, match="corrupt"):
        store.verify(blob, "0" * 64)


def _fake_parts(root: Path, prefix: str, chunks: list[bytes]) -> None:
    for number, data in enumerate(chunks, start=1):
        folder = root / f"{prefix}{number}" / "data"
        folder.mkdir(parents=True)
        (folder / f"part{number:02d}.bin").write_bytes(data)


def test_parts_are_joined_in_order_and_hash_checked(tmp_path: Path) -> None:
    import hashlib

    chunks = [b"GGUF-one-", b"two-", b"three"]
    base = CATALOG["qwen2.5-coder-0.5b-instruct"]
    spec = replace(
        base,
        parts=("p1", "p2", "p3"),
        part_module_prefix="zz_test_part",
        sha256=hashlib.sha256(b"".join(chunks)).hexdigest(),
    )
    _fake_parts(tmp_path / "site", "zz_test_part", chunks)
    target = tmp_path / "out" / "model.gguf"
    assemble_parts(spec, [tmp_path / "site"], target)
    assert target.read_bytes() == b"GGUF-one-two-three"

    wrong = replace(spec, sha256="0" * 64)
    target2 = tmp_path / "out" / "model2.gguf"
    with pytest.raises(ModelIntegrityError):
        assemble_parts(wrong, [tmp_path / "site"], target2)
    assert not target2.exists() and not list((tmp_path / "out").glob("*.partial"))


def test_a_missing_part_is_named(tmp_path: Path) -> None:
    spec = replace(CATALOG["qwen2.5-coder-0.5b-instruct"], parts=("a", "b"), part_module_prefix="zz_missing_part")
    _fake_parts(tmp_path, "zz_missing_part", [b"x"])
    with pytest.raises(ModelNotFoundError, match="part 2"):
        assemble_parts(spec, [tmp_path], tmp_path / "m.gguf")


def test_status_lists_every_catalog_model(tmp_path: Path) -> None:
    names = {s.spec.name for s in ModelStore(tmp_path).status()}
    assert names == set(CATALOG)


def _zip_split(tmp_path: Path, members: dict[str, bytes], pieces: int) -> list[bytes]:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    raw = buffer.getvalue()
    size = -(-len(raw) // pieces)
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def test_a_split_zip_is_joined_checked_and_unpacked_to_its_model_folder(tmp_path: Path) -> None:
    import hashlib

    chunks = _zip_split(tmp_path, {"enc/config.json": b"{}", "enc/model.safetensors": b"w" * 5000}, 3)
    spec = replace(
        CATALOG["all-mpnet-base-v2"],
        parts=("a", "b", "c"),
        part_relpath="zz_zip_part_{number:03d}/input/enc.zip.{number:03d}",
        filename="enc",
        sha256=hashlib.sha256(b"".join(chunks)).hexdigest(),
    )
    for number, data in enumerate(chunks, start=1):
        folder = tmp_path / "site" / f"zz_zip_part_{number:03d}" / "input"
        folder.mkdir(parents=True)
        (folder / f"enc.zip.{number:03d}").write_bytes(data)
    store = ModelStore(tmp_path / "cache")
    target = store.pulled_path(spec)
    assemble_parts(spec, [tmp_path / "site"], target)
    assert (target / "model.safetensors").read_bytes() == b"w" * 5000
    assert not list(target.parent.glob("*.partial")) and not list(target.parent.glob(".*unpacking"))
    store.verify_unpacked(target)  # the manifest written on unpacking matches
    (target / "model.safetensors").write_bytes(b"w" * 4999 + b"x")
    with pytest.raises(ModelIntegrityError, match=r"model\.safetensors has sha256"):
        store.verify_unpacked(target)
    (target / "claimflow-manifest.json").unlink()
    with pytest.raises(ModelIntegrityError, match="pull again"):
        store.verify_unpacked(target)

    missing_folder = replace(spec, filename="other")
    other = tmp_path / "cache2" / "other"
    with pytest.raises(ModelIntegrityError, match="no folder 'other'"):
        assemble_parts(missing_folder, [tmp_path / "site"], other)
    assert not other.exists() and not list(other.parent.iterdir())


def test_the_larger_encoder_is_opt_in_and_says_how_to_pull_it(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=re.escape("claimflow models pull all-mpnet-base-v2")):
        ModelStore(tmp_path).resolve("all-mpnet-base-v2")

"""Reading user files (evidence lists, claim batches) and writing output files: encoding errors and
unusable paths become clear InputErrors. YAML files (configs, specs, training configs, templates) are
read by :func:`load_yaml`, whose errors are the caller's error class naming the file and line."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import jinja2

from claimflow.errors import ClaimflowError, ConfigError, InputEncodingError, InputError


def decode(data: bytes, source: str, encoding: str = "utf-8") -> str:
    try:
        return data.decode("utf-8-sig" if encoding.lower() in {"utf-8", "utf8"} else encoding)
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise InputEncodingError(
            f"{source} is not valid {encoding} (byte 0x{bad} at offset {exc.start}): re-save it as UTF-8, "
            "or pass --encoding with the file's real encoding (e.g. latin-1)"
        ) from exc
    except LookupError as exc:
        raise InputError(f"unknown encoding {encoding!r}") from exc


def read_text(path: str, encoding: str = "utf-8") -> str:
    """``-`` reads standard input."""
    if path == "-":
        return decode(sys.stdin.buffer.read(), "standard input", encoding)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return decode(data, path, encoding)


def prepare_output(path: Path) -> None:
    """Make ``path`` ready to be written as an output file: a missing folder above it is created.

    An existing folder at ``path``, or a folder that cannot be created, is an :class:`InputError`.
    """
    refuse_folder(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the folder {path.parent} for the output {path}: {exc.strerror or exc}; "
            "choose a writable location"
        ) from exc


def refuse_folder(path: Path) -> None:
    """An :class:`InputError` when the output file ``path`` is an existing folder."""
    if path.is_dir():
        raise InputError(f"the output {path} is a folder: give a file path, e.g. {path / 'out.jsonl'}")


def output_error(path: Path, exc: OSError) -> InputError:
    """The :class:`InputError` for an output file that cannot be opened or written."""
    return InputError(f"cannot write {path}: {exc.strerror or exc}; choose a writable location")


def write_failure(path: Path, exc: BaseException, kept: str) -> InputError:
    """The :class:`InputError` for a file (a checkpoint, an output) that could not be written: the OS
    reason, or "No space left on device" for a library's opaque write error on a full disk (torch's
    ``unexpected pos``), and ``kept``: what is still there."""
    if isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    elif _nearly_full(path):
        reason = f"{os.strerror(errno.ENOSPC)} ({exc})"
    else:
        reason = str(exc)
    return InputError(f"cannot write {path}: {reason}; {kept}")


def _nearly_full(path: Path) -> bool:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def write_output(path: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` after :func:`prepare_output`."""
    prepare_output(path)
    try:
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
    except OSError as exc:
        raise output_error(path, exc) from exc


def parse_evidence(text: str, source: str) -> list[str]:
    """A JSON list of strings, a JSON object with an ``evidence`` list, or one sentence per line."""
    source = "standard input" if source == "-" else source
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source} looks like JSON but does not parse: {exc}") from exc
        if isinstance(data, dict):
            data = data.get("evidence")
        if not isinstance(data, list) or not all(isinstance(s, str) for s in data):
            raise InputError(f"{source}: expected a JSON list of sentences (or an object with an 'evidence' list)")
        return data
    return [line.strip() for line in text.splitlines() if line.strip()]


def bundled_example() -> dict[str, Any]:
    text = (resources.files("claimflow") / "examples" / "example.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def iter_jsonl(path: str, encoding: str = "utf-8") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each non-blank line of a file; a bad line is an InputError naming it."""
    return parse_jsonl(read_text(path, encoding), path)


def parse_jsonl(text: str, source: str, error: type[InputError] = InputError) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each non-blank line of ``text``; bad lines raise ``error``.
    Lines are split on "\\n" only (``str.splitlines`` would also split at U+2028 inside a string)."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{source}:{number}: not valid JSON: {exc}") from exc
        if not isinstance(record, dict):
            raise error(f"{source}:{number}: each line must be a JSON object")
        if "\\u" in line and _LONE_SURROGATE_ESCAPE.search(line) and not _encodes(record):
            raise error(
                f"{source}:{number}: a lone surrogate escape (e.g. \\udcc3) is not valid text and could not be "
                "written back as UTF-8: re-export the file from its real encoding"
            )
        yield number, record


_LONE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _encodes(record: Any) -> bool:
    """Whether ``record`` can be written as UTF-8 JSON (no lone surrogate left by a ``\\udcxx`` escape)."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def load_yaml(
    path: str | Path, what: str = "YAML file", *, error: type[ClaimflowError] = ConfigError, mapping: bool = False
) -> Any:
    """The YAML document in ``path`` (UTF-8, a byte-order mark allowed), parsed with ``yaml.safe_load``.

    ``what`` names the file in messages ("config file", "A/B spec"). A missing or unreadable file, bad
    UTF-8 and bad YAML (with its line and column) raise ``error``; see :func:`parse_yaml` for ``mapping``.
    """
    source = f"{what} {path}"
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise error(f"cannot read {what}: {path} does not exist") from exc
    except OSError as exc:
        raise error(f"cannot read {source}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise error(
            f"cannot read {source}: it is not valid UTF-8 (byte 0x{bad} at offset {exc.start}); re-save it as UTF-8"
        ) from exc
    return parse_yaml(text, source, error=error, mapping=mapping)


def parse_yaml(text: str, source: str, *, error: type[ClaimflowError] = ConfigError, mapping: bool = False) -> Any:
    """``yaml.safe_load(text)``; bad YAML raises ``error`` naming ``source`` and the line.

    With ``mapping`` the top level must be a mapping: an empty document gives ``{}``, anything else
    (a list, a string) raises ``error``. Without it an empty document gives ``None``.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"cannot read {source}: not valid YAML {_yaml_problem(exc, text)}") from exc
    if not mapping:
        return data
    if data is None:
        return {}
    if not isinstance(data, dict):
        names: dict[type, str] = {list: "a list", str: "a string"}
        kind = names.get(type(data), f"a {type(data).__name__}")
        raise error(f"{source} must hold a YAML mapping (key: value lines) at the top level, not {kind}")
    return data


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    """Where (1-based line and column) and what went wrong, without PyYAML's "<unicode string>" marks."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = [part for part in (exc.context, exc.problem) if part]
        if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            what[0] += f" (started at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
        where = f"at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"{where}: {', '.join(what) or exc}".lstrip()
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        return f"at line {line}, column {column}: {str(exc).splitlines()[0]}"
    return f": {exc}"


def html_templates(package: str, folder: str = "templates", **options: Any) -> jinja2.Environment:
    """The Jinja2 environment every HTML page is rendered with: templates from ``package``'s ``folder``
    (package data), autoescaped, a missing variable an error, block tags leaving no blank lines.
    ``options`` override or add jinja2.Environment settings (e.g. ``keep_trailing_newline=True``)."""
    import jinja2

    settings: dict[str, Any] = {"autoescape": True, "undefined": jinja2.StrictUndefined}
    settings |= {"trim_blocks": True, "lstrip_blocks": True} | options
    return jinja2.Environment(loader=jinja2.PackageLoader(package, folder), **settings)

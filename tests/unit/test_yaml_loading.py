"""One YAML reader for configs, A/B specs, training configs and templates (``claimflow.io.load_yaml``):
each failure is the caller's error class, naming the file and, for bad YAML, the line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from claimflow.config import PipelineConfig
from claimflow.errors import ConfigError, TemplateError
from claimflow.evals.ab import ABSpec
from claimflow.finetune.classifier import ClassifierConfig
from claimflow.io import load_yaml, parse_yaml
from claimflow.prompts.template import PromptTemplate


def _write(tmp_path: Path, data: str | bytes, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def test_a_mapping_is_read(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: 1\nb: [x, y]\n")
    assert load_yaml(path, "config file", mapping=True) == {"a": 1, "b": ["x", "y"]}
    assert load_yaml(str(path)) == {"a": 1, "b": ["x", "y"]}


def test_a_byte_order_mark_is_allowed(tmp_path: Path) -> None:
    assert load_yaml(_write(tmp_path, b"\xef\xbb\xbfa: 1\n")) == {"a": 1}


def test_bad_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: 1\nb: [unclosed\nc: 2\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path, "config file")
    message = str(info.value)
    assert message.startswith(f"cannot read config file {path}: not valid YAML at line ")
    assert "started at line 2" in message
    assert "<unicode string>" not in message


def test_a_bad_character_names_the_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"c\.yaml: not valid YAML at line 2, column 4: unacceptable character"):
        load_yaml(_write(tmp_path, "a: 1\nb: \x00\n"), "config file")


def test_the_error_class_is_the_callers(tmp_path: Path) -> None:
    path = _write(tmp_path, "id: [unclosed")
    with pytest.raises(TemplateError, match=r"template file .*c\.yaml: not valid YAML at line 1, column 14"):
        load_yaml(path, "template file", error=TemplateError)


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- a\n- b\n", "a list"), ("just words\n", "a string"), ("42\n", "a int")],
)
def test_a_non_mapping_top_level_is_refused_when_asked(tmp_path: Path, text: str, kind: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=f"A/B spec .*c\\.yaml must hold a YAML mapping .* not {kind}$"):
        load_yaml(path, "A/B spec", mapping=True)
    assert load_yaml(path) is not None  # without mapping= any document is returned


def test_bad_encoding_says_where_and_what_to_do(tmp_path: Path) -> None:
    path = _write(tmp_path, b"a: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path, "training config")
    assert str(info.value) == (
        f"cannot read training config {path}: it is not valid UTF-8 (byte 0xe9 at offset 6); re-save it as UTF-8"
    )


def test_a_missing_file_and_a_folder(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match=f"^cannot read config file: {re.escape(str(missing))} does not exist$"):
        load_yaml(missing, "config file")
    with pytest.raises(ConfigError, match=f"^cannot read config file {re.escape(str(tmp_path))}: "):
        load_yaml(tmp_path, "config file")


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_an_empty_file(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    assert load_yaml(path) is None
    assert load_yaml(path, mapping=True) == {}


def test_text_entry_point() -> None:
    assert parse_yaml("a: 1", "run r1 config", mapping=True) == {"a": 1}
    assert parse_yaml("", "run r1 config", mapping=True) == {}
    with pytest.raises(ConfigError, match=r"^cannot read run r1 config: not valid YAML at line 1, column 5"):
        parse_yaml("a: b: c", "run r1 config")
    with pytest.raises(ConfigError, match=r"^run r1 config must hold a YAML mapping"):
        parse_yaml("[1, 2]", "run r1 config", mapping=True)


def test_every_reader_uses_it(tmp_path: Path) -> None:
    bad = _write(tmp_path, "key: [unclosed\n")
    for read, what, error in [
        (PipelineConfig.from_yaml, "config file", ConfigError),
        (ABSpec.from_yaml, "A/B spec", ConfigError),
        (ClassifierConfig.from_yaml, "training config", ConfigError),
        (PromptTemplate.from_file, "template file", TemplateError),
    ]:
        expected = f"^cannot read {what} {re.escape(str(bad))}: not valid YAML at line 2, column 1: "
        with pytest.raises(error, match=expected):
            read(bad)


def test_an_empty_training_config_names_the_missing_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"training config .* is invalid: output_dir: Field required"):
        ClassifierConfig.from_yaml(_write(tmp_path, ""))

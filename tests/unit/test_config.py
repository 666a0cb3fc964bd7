from __future__ import annotations

from pathlib import Path

import pytest

from claimflow import PipelineConfig
from claimflow.errors import ConfigError

EXAMPLE_CONFIGS = sorted((Path(__file__).parents[2] / "examples").glob("config_*.yaml"))


@pytest.mark.parametrize(
    "config",
    [
        PipelineConfig(),
        PipelineConfig.from_dict(
            {
                "backends": {
                    "default": {"kind": "llamacpp"},
                    "server": {"kind": "openai", "model": "m", "base_url": "http://127.0.0.1:1/v1"},
                },
                "veracity": {"predictor": "prompt", "backend": "server", "template": "veracity_justifications_rawfc@1"},
                "stages": ["check_worthiness"],
            }
        ),
        *[PipelineConfig.from_yaml(p) for p in EXAMPLE_CONFIGS],
    ],
)
def test_configs_round_trip_through_yaml(config: PipelineConfig, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    config.save(path)
    assert PipelineConfig.from_yaml(path) == config


def test_unknown_keys_are_errors_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"veracity\.tempalte"):
        PipelineConfig.from_dict({"veracity": {"tempalte": "x"}})


def test_a_stage_naming_a_missing_backend_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"no backend named 'gpu'"):
        PipelineConfig.from_dict({"justify": {"backend": "gpu"}})


def test_bad_values_are_errors() -> None:
    with pytest.raises(ConfigError, match=r"check_worthiness\.threshold"):
        PipelineConfig.from_dict({"check_worthiness": {"threshold": 2}})
    with pytest.raises(ConfigError, match="stages"):
        PipelineConfig.from_dict({"stages": ["veracity", "veracity"]})


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        PipelineConfig.from_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("backends: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        PipelineConfig.from_yaml(bad)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="cannot read"):
        PipelineConfig.from_yaml(binary)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        PipelineConfig.from_yaml(listing)


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert PipelineConfig.from_yaml(empty) == PipelineConfig()


def test_a_template_set_for_a_trained_predictor_is_an_error_not_ignored() -> None:
    with pytest.raises(ConfigError, match="only used by predictor: prompt"):
        PipelineConfig.from_dict({"veracity": {"template": "veracity_justifications_rawfc@1"}})
    config = PipelineConfig.from_dict(
        {"veracity": {"predictor": "prompt", "template": "veracity_justifications_rawfc@1"}}
    )
    assert config.veracity.template == "veracity_justifications_rawfc@1"

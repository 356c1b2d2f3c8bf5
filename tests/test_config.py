"""Config: YAML + dotted overrides, clear errors for unknown keys and wrong types, save round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from geo_r_lite.config import (
    Config,
    ConfigError,
    config_to_dict,
    load_config,
    save_config,
    split_cli,
)

REPO = Path(__file__).resolve().parents[1]


def test_defaults_load_without_a_file():
    cfg = load_config()
    assert isinstance(cfg, Config)
    assert cfg.train.num_generations == 4
    assert cfg.eval.data.split == "test"


@pytest.mark.parametrize(
    "override, get, expected",
    [
        pytest.param("--train.learning_rate=5e-6", lambda c: c.train.learning_rate, 5e-6, id="YAML 1.1 reads 5e-6 as text; float field accepts it"),
        pytest.param("--train.max_steps=7", lambda c: c.train.max_steps, 7, id="int"),
        pytest.param("--model.backend=hf", lambda c: c.model.backend, "hf", id="string"),
        pytest.param("--data.strict=true", lambda c: c.data.strict, True, id="bool"),
        pytest.param("--model.adapter=null", lambda c: c.model.adapter, None, id="optional set to None"),
        pytest.param("--reward.weights=[1, 0.5, 2]", lambda c: c.reward.weights, [1.0, 0.5, 2.0], id="list of floats widened from ints"),
        pytest.param("--data.columns={lat: LAT, lon: LON}", lambda c: c.data.columns, {"lat": "LAT", "lon": "LON"}, id="mapping"),
        pytest.param("--eval.data.path=x.csv", lambda c: c.eval.data.path, "x.csv", id="nested section two levels down"),
        pytest.param("--train.trl_overrides={num_iterations: 2}", lambda c: c.train.trl_overrides, {"num_iterations": 2}, id="escape hatch takes anything"),
    ],
)
def test_dotted_overrides(override, get, expected):
    assert get(load_config(None, [override])) == expected


def test_override_wins_over_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  max_steps: 3\n  learning_rate: 1.0e-5\nmodel:\n  name: tiny\n")
    cfg = load_config(path, ["--train.max_steps=9"])
    assert (cfg.train.max_steps, cfg.train.learning_rate, cfg.model.name) == (9, 1e-5, "tiny")


@pytest.mark.parametrize(
    "override, message",
    [
        pytest.param("--train.learnin_rate=1", "unknown config key 'train.learnin_rate'; did you mean 'train.learning_rate'", id="typo gets the closest key"),
        pytest.param("--eval.data.sorce=x", "did you mean 'eval.data.source'", id="typo in a nested section"),
        pytest.param("--trian.max_steps=1", "unknown config key 'trian'; did you mean 'train'", id="typo in a section name"),
        pytest.param("--train.max_steps=abc", "train.max_steps: expected int", id="text for an int"),
        pytest.param("--train.max_steps=1.5", "train.max_steps: expected int", id="float for an int is not silently truncated"),
        pytest.param("--data.strict=maybe", "data.strict: expected bool", id="text for a bool"),
        pytest.param("--reward.weights=[1, x]", "reward.weights[1]: expected float", id="bad list item named by index"),
        pytest.param("--model=tiny", "model: expected a section", id="scalar for a section"),
        pytest.param("train.max_steps=1", "must look like --section.key=value", id="missing dashes"),
    ],
)
def test_errors_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(None, [override])


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(None, ["--train.learning_rate=3e-6", "--data.columns={lat: LAT}", "--eval.data.source=manifest"])
    path = save_config(cfg, tmp_path / "run")
    assert path == tmp_path / "run" / "config.yaml"
    assert load_config(path) == cfg
    assert yaml.safe_load(path.read_text())["train"]["learning_rate"] == 3e-6


@pytest.mark.parametrize("path", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_shipped_configs_load(path):
    assert config_to_dict(load_config(REPO / "configs" / path))


def test_split_cli():
    path, overrides, rest = split_cli(["--config", "a.yaml", "--train.max_steps=2", "--resume", "--score", "p.jsonl"])
    assert (path, overrides, rest) == ("a.yaml", ["--train.max_steps=2"], ["--resume", "--score", "p.jsonl"])

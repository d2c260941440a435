import copy

import pytest
import yaml

from conftest import REPO, SCHEMA_DIR
from polysent.config import (
    ConfigError,
    check_experiments,
    experiment_problems,
    load_config,
    load_schema,
    validate_config,
)


def _default():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "tiny.yaml"])
def test_shipped_configs_validate(name):
    config = yaml.safe_load((REPO / "config" / name).read_text())
    validate_config(config, SCHEMA_DIR)
    assert config["corpus"]["source"] in {"demo", "moseas", "folder"}


def test_defaults_are_filled():
    config = {"languages": ["fr"]}
    validate_config(config, SCHEMA_DIR)
    assert config["seed"] == 7
    assert config["qc"]["max_failure_rate"] == 0.2
    assert config["corpus"]["source"] == "demo"


def test_schema_defaults_step_into_mapping_entries_and_list_items():
    from polysent.config import schema_defaults

    assert schema_defaults("experiments", "*")["task"] == "sentiment"
    assert schema_defaults("findings", "*") == {"metric": "r"}


def test_unknown_top_level_key_names_key_and_allowed_keys():
    config = _default()
    config["acoustc"] = {}
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA_DIR)
    msg = str(err.value)
    assert "unknown key 'acoustc'" in msg
    assert "did you mean 'acoustic'?" in msg
    assert "allowed keys:" in msg and "languages" in msg


def test_unknown_nested_key_names_its_path():
    config = _default()
    config["qc"]["max_fail_rate"] = 0.3
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA_DIR)
    assert "unknown key 'max_fail_rate' in qc" in str(err.value)
    assert "max_failure_rate" in str(err.value)


def test_bad_enum_lists_allowed_values():
    config = _default()
    config["corpus"]["source"] = "youtube"
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA_DIR)
    assert "corpus.source: 'youtube' is not one of the allowed values: 'demo', 'moseas', 'folder'" in str(err.value)


def test_wrong_type_and_range_reported_together():
    config = _default()
    config["shards"] = 0
    config["languages"] = ["french"]
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA_DIR)
    msg = str(err.value)
    assert "2 problem(s)" in msg
    assert "shards" in msg and "languages.0" in msg


def test_every_section_schema_is_closed():
    """A section that accepted any key would let typos through silently."""
    schema = load_schema(SCHEMA_DIR)

    def walk(node, path):
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is not True, path
            if "additionalProperties" not in node:
                pytest.fail(f"{path or '<top>'} does not set additionalProperties")
            for key, sub in node["properties"].items():
                walk(sub, f"{path}.{key}".lstrip("."))

    walk(copy.deepcopy(schema), "")


def _with_experiments(**entries):
    config = _default()
    config["experiments"] = entries
    validate_config(config, SCHEMA_DIR)
    return config


def test_shipped_experiments_have_no_problems():
    config = _default()
    config.update(yaml.safe_load((REPO / "config" / "experiments.yaml").read_text()))
    validate_config(config, SCHEMA_DIR)
    assert experiment_problems(config, list(config["experiments"])) == []


def test_experiment_with_unconfigured_languages_is_refused_by_name():
    config = _with_experiments(
        a={"model": "mult", "train": {"fr": 1.0, "de": 1.0}, "eval": "fr"},
        b={"model": "mult", "train": {"fr": 1.0}, "eval": "de"},
    )
    with pytest.raises(ConfigError) as err:
        check_experiments(config, ["a", "b"])
    msg = str(err.value)
    assert "experiments.a.train: language 'de' is not configured (languages: fr, es)" in msg
    assert "experiments.b.eval: language 'de' is not configured" in msg
    assert "2 problem(s)" in msg


def test_experiment_missing_keys_and_zero_fraction():
    config = _with_experiments(a={"train": {"fr": 0}}, ok={"model": "mult", "train": {"fr": 1.0}, "eval": "fr"})
    problems = experiment_problems(config, ["a", "ok"])
    assert "experiments.a: lacks required key(s) model, eval" in problems
    assert any("experiments.a.train.fr: fraction 0 trains on nothing" in p for p in problems)
    assert len(problems) == 2  # nothing about the valid entry


def test_only_selected_experiments_are_checked():
    config = _with_experiments(bad={"model": "mult", "train": {"it": 1.0}, "eval": "it"})
    check_experiments(config, [])  # an unselected entry is never trained
    assert experiment_problems(config, ["bad"])


def test_emotion_labels_must_exist_in_the_demo_corpus():
    config = _with_experiments(
        e={"model": "mctn", "task": "emotion", "emotions": ["happiness", "joy"], "train": {"fr": 1.0}, "eval": "fr"},
        empty={"model": "mctn", "task": "emotion", "train": {"fr": 1.0}, "eval": "fr"},
    )
    problems = experiment_problems(config, ["e", "empty"])
    assert any(p.startswith("experiments.e.emotions: joy not among the corpus labels") for p in problems)
    assert "experiments.empty: task 'emotion' needs a non-empty 'emotions' list" in problems


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("languages: [fr, es]\nacoustic:\n  sr: [16000\nvisual: {}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, SCHEMA_DIR)
    msg = str(err.value)
    assert msg.startswith(f"{path}:")
    assert "YAML syntax error" in msg
    line = int(msg.split(":")[1])
    assert 3 <= line <= 4


def test_complete_fills_validates_and_hands_each_caller_its_own_copy():
    """complete() is memoised on the settings; a caller that edits its result changes no other's,
    and a bad value fails every time, the memo never making a non-JSON value valid."""
    from pathlib import Path

    from polysent.config import complete, schema_defaults

    first = complete({"fps": 5}, "visual", "landmarks")
    assert first == {**schema_defaults("visual", "landmarks"), "fps": 5}
    first["fps"] = 99
    first["upsample"] = -1
    assert complete({"fps": 5}, "visual", "landmarks") == {**schema_defaults("visual", "landmarks"), "fps": 5}
    # what JSON would turn into valid settings (a tuple into a list) is judged as given
    with pytest.raises(ConfigError, match="media.sample_rates: .16000,. is not of type 'array'"):
        complete({"sample_rates": (16000,)}, "media")
    with pytest.raises(ConfigError, match="media.ffmpeg: PosixPath"):
        complete({"ffmpeg": Path("/usr/bin/ffmpeg")}, "media")
    for _ in range(2):
        with pytest.raises(ConfigError, match="visual.landmarks.fps"):
            complete({"fps": "fast"}, "visual", "landmarks")


def test_schema_files_read_through_libyaml_give_the_pure_python_objects():
    from polysent import config

    files = sorted((REPO / "workflow/schemas").glob("**/*.yaml"))
    assert len(files) > 10
    for path in files:
        text = path.read_text()
        assert config._load_yaml(text) == yaml.safe_load(text), path.name

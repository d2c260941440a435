import copy

import pytest
import yaml

from polysent.config import ConfigError, load_schema, validate_config
from conftest import REPO, SCHEMA_DIR


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
    assert "corpus.source: 'youtube' is not one of the allowed values: 'demo', 'moseas', 'folder'" in str(
        err.value
    )


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

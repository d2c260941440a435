"""Config validation: one JSON schema assembled from per-section files, defaults filled in.

The schema lives in ``workflow/schemas/config.schema.yaml`` (top level) plus one file per
section in ``workflow/schemas/config/<section>.schema.yaml`` so that each stage owns its slice.
Errors name the offending key path and the allowed keys or values, because a researcher who
mistypes ``acoustc`` wants to be told ``acoustic``, not shown a jsonschema traceback.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class ConfigError(ValueError):
    """The workflow config does not match its schema; the message lists every problem."""


def load_schema(schema_dir: str | Path) -> dict:
    """Top-level schema with each ``config/<a.b>.schema.yaml`` merged in at ``properties.a.properties.b``.

    A dotted file name nests: ``corpus.demo.schema.yaml`` is the ``demo`` slice of ``corpus``, so
    the owners of two slices of one section never edit the same file.
    """
    schema_dir = Path(schema_dir)
    schema = yaml.safe_load((schema_dir / "config.schema.yaml").read_text())
    parts = sorted((schema_dir / "config").glob("*.schema.yaml"), key=lambda p: p.name.count("."))
    for part in parts:
        *parents, leaf = part.name.removesuffix(".schema.yaml").split(".")
        node = schema
        for name in parents:
            node = node.setdefault("properties", {}).setdefault(name, {"type": "object"})
        node.setdefault("properties", {})[leaf] = yaml.safe_load(part.read_text())
    return schema


def _with_defaults(validator_class):
    """Extend a validator so that ``default:`` values are written into the instance."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultingValidator = _with_defaults(jsonschema.Draft202012Validator)


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        parts = []
        for key in extra:
            hint = difflib.get_close_matches(key, allowed, n=1)
            did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
            parts.append(
                f"unknown key '{key}' in {where}{did_you_mean}; allowed keys: {', '.join(allowed)}"
            )
        return "\n".join(parts)
    if error.validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        return f"{where}: {error.instance!r} is not one of the allowed values: {allowed}"
    return f"{where}: {error.message}"


def validate_config(config: dict[str, Any], schema_dir: str | Path) -> dict[str, Any]:
    """Validate ``config`` in place (filling defaults) and return it; raise ConfigError listing all problems."""
    schema = load_schema(schema_dir)
    validator = _DefaultingValidator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n".join(f"  - {_describe(e)}" for e in errors)
        raise ConfigError(f"invalid polysent config ({len(errors)} problem(s)):\n{lines}")
    return config


def load_config(path: str | Path, schema_dir: str | Path, overrides: dict | None = None) -> dict:
    """Read a YAML config, apply ``overrides`` (deep merge) and validate it."""
    config = yaml.safe_load(Path(path).read_text()) or {}
    if overrides:
        config = deep_merge(config, overrides)
    return validate_config(config, schema_dir)


def deep_merge(base: dict, extra: dict) -> dict:
    """Return ``base`` updated recursively by ``extra`` (neither argument is modified)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out

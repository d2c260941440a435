"""Config validation: one JSON schema assembled from per-section files, defaults filled in.

The schema lives in ``workflow/schemas/config.schema.yaml`` (top level) plus one file per
section in ``workflow/schemas/config/<section>.schema.yaml`` so that each stage owns its slice.
Errors name the offending key path and the allowed keys or values, because a researcher who
mistypes ``acoustc`` wants to be told ``acoustic``, not shown a jsonschema traceback.
"""

from __future__ import annotations

import copy
import difflib
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from polysent.errors import PolysentError


class ConfigError(PolysentError, ValueError):
    """The workflow config does not match its schema; the message lists every problem."""


def schema_dir() -> Path:
    """The workflow's config schemas (the package is installed editable from the repository)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "workflow" / "schemas"
        if (candidate / "config.schema.yaml").exists():
            return candidate
    raise FileNotFoundError(
        "workflow/schemas/config.schema.yaml not found above "
        f"{here}; run polysent from an editable install of the repository (pip install -e .)"
    )


def load_schema(schema_dir: str | Path) -> dict:
    """A deep copy of the assembled schema (cached per folder: it is read at every entry point)."""
    return copy.deepcopy(_load_schema(str(Path(schema_dir).resolve())))


@functools.lru_cache(maxsize=8)
def _load_schema(schema_dir: str) -> dict:
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
            parts.append(f"unknown key '{key}' in {where}{did_you_mean}; allowed keys: {', '.join(allowed)}")
        return "\n".join(parts)
    if error.validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        return f"{where}: {error.instance!r} is not one of the allowed values: {allowed}"
    return f"{where}: {error.message}"


@functools.lru_cache(maxsize=8)
def _validator(schema_dir: str):
    """One validator per schema folder: validation never changes the schema (defaults are copied
    into the instance), so library code may call :func:`complete` per video without re-reading it."""
    return _DefaultingValidator(_load_schema(schema_dir))


def validate_config(config: dict[str, Any], schema_dir: str | Path) -> dict[str, Any]:
    """Validate ``config`` in place (filling defaults) and return it; raise ConfigError listing all problems."""
    errors = sorted(
        _validator(str(Path(schema_dir).resolve())).iter_errors(config), key=lambda e: list(map(str, e.absolute_path))
    )
    if errors:
        lines = "\n".join(f"  - {_describe(e)}" for e in errors)
        raise ConfigError(f"invalid polysent config ({len(errors)} problem(s)):\n{lines}")
    return config


def complete(slice_: dict | None, *path: str) -> dict:
    """``slice_`` (the config at ``path``, e.g. ``"visual", "openface"``) validated, schema defaults filled.

    The one way library code gets the defaults of its settings: they live only in the schemas,
    so a CLI call, a test and a workflow rule with the same partial settings see the same values.
    """
    config: dict[str, Any] = {"languages": ["fr"]}
    node = config
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = copy.deepcopy(slice_ or {})
    node = validate_config(config, schema_dir())
    for key in path:
        node = node[key]
    return node


def schema_defaults(*path: str) -> dict:
    """The ``default:`` of each setting at ``path`` in the schema; ``"*"`` steps into the entry
    schema of a mapping keyed by name (``"predict", "*", "segment"``)."""
    node = load_schema(schema_dir())
    for key in path:
        node = node["additionalProperties"] if key == "*" else node["properties"][key]
    return {k: v["default"] for k, v in node.get("properties", {}).items() if "default" in v}


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a syntax error names the file, line and column (Snakemake's own does not)."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML error: {exc}") from None


def load_config(path: str | Path, schema_dir: str | Path, overrides: dict | None = None) -> dict:
    """Read a YAML config, apply ``overrides`` (deep merge) and validate it."""
    config = read_yaml(path) or {}
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


REQUIRED_EXPERIMENT_KEYS = ("model", "train", "eval")


def experiment_problems(config: dict[str, Any], names: list[str]) -> list[str]:
    """What makes the experiments ``names`` of a validated ``config`` unrunnable, one line each.

    Checked on the merged config (an entry may be completed by a later config file, so the
    schema cannot require keys) and before any rule reads an entry, so a mistake is reported at
    DAG build instead of as a ``KeyError`` in a rule file or a blank Table 1 row 18 jobs later.
    """
    langs = list(config.get("languages") or [])
    experiments = config.get("experiments") or {}
    corpus = config.get("corpus") or {}
    demo_emotions = (corpus.get("demo") or {}).get("emotions") if corpus.get("source") == "demo" else None
    problems = []
    for name in names:
        entry = experiments.get(name) or {}
        where = f"experiments.{name}"
        missing = [k for k in REQUIRED_EXPERIMENT_KEYS if k not in entry]
        if missing:
            problems.append(f"{where}: lacks required key(s) {', '.join(missing)}")
        for lang, share in (entry.get("train") or {}).items():
            if lang not in langs:
                problems.append(f"{where}.train: language '{lang}' is not configured (languages: {', '.join(langs)})")
            if isinstance(share, (int, float)) and not share > 0:
                problems.append(f"{where}.train.{lang}: fraction {share} trains on nothing; use a value > 0")
        if "eval" in entry and entry["eval"] not in langs:
            problems.append(
                f"{where}.eval: language '{entry['eval']}' is not configured (languages: {', '.join(langs)})"
            )
        if entry.get("task") == "emotion":
            emotions = list(entry.get("emotions") or [])
            if not emotions:
                problems.append(f"{where}: task 'emotion' needs a non-empty 'emotions' list")
            elif demo_emotions is not None:
                unknown = [e for e in emotions if e not in demo_emotions]
                if unknown:
                    problems.append(
                        f"{where}.emotions: {', '.join(unknown)} not among the corpus labels "
                        f"(corpus.demo.emotions: {', '.join(demo_emotions)})"
                    )
    return problems


def check_experiments(config: dict[str, Any], names: list[str]) -> None:
    """Raise ConfigError listing every problem of the experiments ``names`` (see experiment_problems)."""
    problems = experiment_problems(config, names)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"invalid experiments ({len(problems)} problem(s)):\n{lines}")


def split_count_problems(config: dict[str, Any], names: list[str], counts: dict[tuple[str, str], int]) -> list[str]:
    """What the corpus's segment counts per (language, split) leave unrunnable among the
    experiments ``names``: a training language without train (or valid) segments, an evaluation
    language without test segments. Such a row would train on nothing or end blank; checked at
    DAG build once the manifest exists, so the run stops before any feature job."""
    experiments = config.get("experiments") or {}
    problems = []
    for name in names:
        entry = experiments.get(name) or {}
        where = f"experiments.{name}"
        for lang in entry.get("train") or {}:
            for split in ("train", "valid"):
                if counts.get((lang, split), 0) == 0:
                    problems.append(f"{where}.train: language '{lang}' has no {split} segments in the corpus")
        lang = entry.get("eval")
        if lang and counts.get((lang, "test"), 0) == 0:
            problems.append(
                f"{where}.eval: language '{lang}' has no test segments in the corpus; "
                f"its row would be blank (add {lang} test videos, or leave the row out of report.table1/emotions)"
            )
    return problems


def check_split_counts(
    config: dict[str, Any], names: list[str], manifest: str | Path, inputs: list[str] | tuple = ()
) -> None:
    """Raise ConfigError listing :func:`split_count_problems` of the manifest at ``manifest``.

    Nothing to check while it does not exist, or while the corpus stage is about to rebuild it:
    one of its ``inputs`` (the release files) is newer, or it was built from another source or
    manifest file than the config names now. A fixed corpus is never blocked by its stale counts.
    """
    manifest = Path(manifest)
    if not manifest.is_file():
        return
    built = manifest.stat().st_mtime
    if any(Path(f).is_file() and Path(f).stat().st_mtime > built for f in inputs):
        return
    from polysent import contracts
    from polysent.io import read_provenance

    corpus = config.get("corpus") or {}
    made = read_provenance(manifest)
    source = corpus.get("source")
    if made.get("source", source) != source:
        return
    if source == "folder" and made.get("manifest", corpus["folder"]["manifest"]) != corpus["folder"]["manifest"]:
        return
    if source == "demo" and made.get("parameters", corpus.get("demo")) != corpus.get("demo"):
        return
    if made.get("seed", config.get("seed")) != config.get("seed"):
        return

    table = contracts.read(manifest, contracts.MANIFEST, columns=["lang", "split"]).to_pandas()
    counts = {key: int(n) for key, n in table.groupby(["lang", "split"]).size().items()}
    problems = split_count_problems(config, names, counts)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"experiments the corpus {manifest} cannot run ({len(problems)} problem(s)):\n{lines}")

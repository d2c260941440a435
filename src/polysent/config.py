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
import json
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
    return copy.deepcopy(_cached_schema(schema_dir))


def _cached_schema(schema_dir: str | Path) -> dict:
    """The assembled schema itself (shared: read it, never change it)."""
    return _load_schema(str(Path(schema_dir).resolve()))


def _load_yaml(text: str):
    """``yaml.safe_load`` through libyaml when PyYAML has it: the same objects, and every job
    that completes its settings reads the ~20 schema files (0.11 CPU-s in Python, 0.013 in C)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@functools.lru_cache(maxsize=8)
def _load_schema(schema_dir: str) -> dict:
    """Top-level schema with each ``config/<a.b>.schema.yaml`` merged in at ``properties.a.properties.b``.

    A dotted file name nests: ``corpus.demo.schema.yaml`` is the ``demo`` slice of ``corpus``, so
    the owners of two slices of one section never edit the same file.
    """
    schema_dir = Path(schema_dir)
    schema = _load_yaml((schema_dir / "config.schema.yaml").read_text())
    parts = sorted((schema_dir / "config").glob("*.schema.yaml"), key=lambda p: p.name.count("."))
    for part in parts:
        *parents, leaf = part.name.removesuffix(".schema.yaml").split(".")
        node = schema
        for name in parents:
            node = node.setdefault("properties", {}).setdefault(name, {"type": "object"})
        node.setdefault("properties", {})[leaf] = _load_yaml(part.read_text())
    _model_names_from_train_models(schema)
    return schema


def _model_names_from_train_models(schema: dict) -> None:
    """An experiment's ``model`` may be any model with settings under ``train.models`` (a test
    keeps those keys equal to ``polysent.models.MODELS``), so a new model is listed once; its
    ``text_encoder`` any of ``text.encoder``'s encoders, likewise."""
    props = schema.get("properties", {})
    models = props.get("train", {}).get("properties", {}).get("models", {}).get("properties")
    entry = props.get("experiments", {}).get("additionalProperties", {}).get("properties", {})
    if models is not None and "model" in entry:
        entry["model"]["enum"] = list(models)
    encoders = props.get("text", {}).get("properties", {}).get("encoder", {}).get("enum")
    if encoders is not None and "text_encoder" in entry:
        entry["text_encoder"]["enum"] = list(encoders)


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
    problems = [_describe(e) for e in errors] or fraction_problems(config)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"invalid polysent config ({len(problems)} problem(s)):\n{lines}")
    return config


def fraction_problems(config: dict[str, Any]) -> list[str]:
    """The schema's checks that JSON Schema cannot state: each corpus source's train/valid/test
    ``splits`` fractions sum to 1, and train and test are not empty."""
    problems = []
    for source, cfg in (config.get("corpus") or {}).items():
        fractions = cfg.get("splits") if isinstance(cfg, dict) else None
        if not isinstance(fractions, list) or len(fractions) != 3:
            continue
        where = f"corpus.{source}.splits"
        if abs(sum(fractions) - 1.0) > 1e-6:
            problems.append(f"{where}: train/valid/test fractions {fractions} sum to {sum(fractions):g}, not 1")
        for name, share in zip(("train", "test"), (fractions[0], fractions[2])):
            if share <= 0:
                problems.append(f"{where}: the {name} fraction is {share:g}; it must be above 0")
    return problems


def complete(slice_: dict | None, *path: str) -> dict:
    """``slice_`` (the config at ``path``, e.g. ``"visual", "openface"``) validated, schema defaults filled.

    The one way library code gets the defaults of its settings: they live only in the schemas,
    so a CLI call, a test and a workflow rule with the same partial settings see the same values.
    Memoised on the settings (validation walks the whole config schema, and a stage may complete
    its slice per video): each call returns its own copy.
    """
    try:
        key = json.dumps(slice_)
    except (TypeError, ValueError):  # a value JSON cannot hold (a path object): validate uncached
        return _complete(slice_, path)
    if json.loads(key) != slice_:  # JSON would change it (a tuple, a non-string key)
        return _complete(slice_, path)
    return copy.deepcopy(_complete_cached(key, path))


@functools.lru_cache(maxsize=256)
def _complete_cached(key: str, path: tuple[str, ...]) -> dict:
    return _complete(json.loads(key), path)


def _complete(slice_: dict | None, path: tuple[str, ...]) -> dict:
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
    schema of a mapping keyed by name (``"predict", "*", "segment"``) or of a list (``"findings", "*"``)."""
    node = _cached_schema(schema_dir())  # only the defaults are copied
    for key in path:
        if key == "*":
            node = node["items"] if "items" in node else node["additionalProperties"]
        else:
            node = node["properties"][key]
    return {k: copy.deepcopy(v["default"]) for k, v in node.get("properties", {}).items() if "default" in v}


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
    problems = model_setting_problems(config, names)
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


_MODEL_FIXED = ("self", "dims", "n_out", "task")  # given by the trainer, never by the config


@functools.lru_cache(maxsize=1)
def model_settings() -> dict[str, tuple[str, ...]]:
    """Each registered model's accepted settings (its constructor's keywords), read from the source
    of ``polysent/models`` without importing it: the workflow checks them at DAG build, where
    importing torch for a name check would cost seconds."""
    import ast

    pkg = Path(__file__).resolve().parent / "models"
    init = ast.parse((pkg / "__init__.py").read_text())
    module_of = {a.asname or a.name: n.module for n in init.body if isinstance(n, ast.ImportFrom) for a in n.names}
    registry = next(
        n.value
        for n in init.body
        if isinstance(n, (ast.Assign, ast.AnnAssign))
        and getattr(n.target if isinstance(n, ast.AnnAssign) else n.targets[0], "id", "") == "MODELS"
    )
    out = {}
    for key, value in zip(registry.keys, registry.values):
        cls_name = value.id
        tree = ast.parse((pkg / f"{module_of[cls_name]}.py").read_text())
        cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
        init_fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
        args = [a.arg for a in init_fn.args.args + init_fn.args.kwonlyargs]
        out[key.value] = tuple(a for a in args if a not in _MODEL_FIXED)
        # the module's named choices (VARIANTS = ("bimodal", ...)): a value close to one is a typo
        _MODEL_WORDS[key.value] = tuple(
            sorted(
                {
                    elt.value
                    for n in tree.body
                    if isinstance(n, ast.Assign) and isinstance(n.value, ast.Tuple)
                    for elt in n.value.elts
                    if isinstance(elt, ast.Constant) and isinstance(elt.value, str)
                }
            )
        )
    return out


_MODEL_WORDS: dict[str, tuple[str, ...]] = {}
MODALITY_WORDS = ("text", "acoustic", "visual")


def _misspelt_values(where: str, settings: dict, words: tuple[str, ...]) -> list[str]:
    problems = []
    for key, value in sorted(settings.items()):
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and v not in words:
                hint = difflib.get_close_matches(v, words, n=1, cutoff=0.8)
                if hint:
                    problems.append(f"{where}.{key}: '{v}' is not a value the model knows (did you mean '{hint[0]}'?)")
    return problems


def _unknown_settings(where: str, model: str, keys, accepted: tuple[str, ...]) -> list[str]:
    problems = []
    for key in sorted(set(keys) - set(accepted)):
        hint = difflib.get_close_matches(key, accepted, n=1)
        did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
        problems.append(
            f"{where}: unknown setting '{key}' for model '{model}'{did_you_mean}; accepted: {', '.join(accepted)}"
        )
    return problems


def model_setting_problems(config: dict[str, Any], names: list[str]) -> list[str]:
    """Settings a model does not accept, in ``train.models.<model>`` and in the ``variation`` of
    the experiments ``names``: a typo (``modalitites``) is named at DAG build with the nearest
    accepted keyword, not as a TypeError in the train job after every feature stage."""
    accepted = model_settings()
    problems = []
    for model, settings in ((config.get("train") or {}).get("models") or {}).items():
        if model in accepted and isinstance(settings, dict):
            problems += _unknown_settings(f"train.models.{model}", model, settings, accepted[model])
            problems += _misspelt_values(f"train.models.{model}", settings, _MODEL_WORDS[model] + MODALITY_WORDS)
    experiments = config.get("experiments") or {}
    for name in names:
        entry = experiments.get(name) or {}
        variation = entry.get("variation") or {}
        if entry.get("model") in accepted and isinstance(variation, dict):
            where = f"experiments.{name}.variation"
            problems += _unknown_settings(where, entry["model"], variation, accepted[entry["model"]])
            problems += _misspelt_values(where, variation, _MODEL_WORDS[entry["model"]] + MODALITY_WORDS)
    return problems

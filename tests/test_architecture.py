"""Architecture rules of the library: no import cycles, no workflow paths, no module-level defaults."""

from __future__ import annotations

import ast
import graphlib

import pytest

from conftest import REPO
from polysent.imports import ImportGraph

SRC = REPO / "src" / "polysent"


def test_the_library_has_no_import_cycles():
    graph = ImportGraph(SRC).graph()
    assert "polysent.align.base" in graph["polysent.align.mfa"]  # the graph sees real edges
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        raise AssertionError(f"import cycle in src/polysent: {' -> '.join(err.args[1])}") from None


def test_cycle_detection_catches_a_package_back_edge(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("def run():\n    from pkg.sub import backend\n")
    (pkg / "sub" / "backend.py").write_text("from pkg.sub import run\n")
    graph = ImportGraph(pkg).graph()
    assert graph["pkg.sub.backend"] == {"pkg.sub"} and graph["pkg.sub"] == {"pkg.sub.backend"}
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError:
        return
    raise AssertionError("the back-edge pkg.sub.backend -> pkg.sub was not reported")


def _module_level_default_dicts(path) -> list[str]:
    """Names of module-level dicts in ``path`` whose name says they hold defaults."""
    found = []
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        value = getattr(node, "value", None)
        for target in targets:
            if isinstance(target, ast.Name) and "DEFAULT" in target.id.upper() and isinstance(value, ast.Dict):
                where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                found.append(f"{where}:{node.lineno} {target.id}")
    return found


def test_defaults_live_only_in_the_schemas():
    """Settings' defaults are in workflow/schemas/config/*.yaml (read via polysent.config), never
    repeated as a module-level dict that can drift from them."""
    found = [hit for path in sorted(SRC.rglob("*.py")) for hit in _module_level_default_dicts(path)]
    assert not found, "module-level default dicts (use polysent.config.complete/schema_defaults): " + ", ".join(found)


def test_the_default_dict_check_sees_one(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("X = 1\nDEFAULTS = {'a': 1}\nlimit_defaults: dict = {'b': 2}\n")
    assert [h.split()[-1] for h in _module_level_default_dicts(module)] == ["DEFAULTS", "limit_defaults"]


def test_cli_subcommands_see_the_schema_defaults():
    """A stage CLI given a partial config gets the same settings the workflow's rule would."""
    from polysent.config import validate_config
    from polysent.features import stage_config

    full = validate_config({"languages": ["fr"]}, SRC.parents[1] / "workflow" / "schemas")
    for section in ("media", "acoustic", "visual", "align", "text", "translate", "store", "train"):
        assert stage_config(section, None, ()) == full[section], section
    partial = stage_config("acoustic", None, ["librosa.n_fft=1024"])
    assert partial["librosa"]["n_fft"] == 1024
    assert partial["librosa"]["hop_length"] == full["acoustic"]["librosa"]["hop_length"]


def test_the_model_names_are_the_registry():
    """A model is listed once: ``MODELS``; the schema's ``train.models`` keys equal it and the
    experiments' ``model`` enum is made from them."""
    from polysent.config import load_schema
    from polysent.models import MODELS

    schema = load_schema(REPO / "workflow" / "schemas")["properties"]
    train_models = schema["train"]["properties"]["models"]["properties"]
    assert list(train_models) == list(MODELS), (
        "train.schema.yaml's train.models keys differ from polysent.models.MODELS"
    )
    assert schema["experiments"]["additionalProperties"]["properties"]["model"]["enum"] == list(MODELS)


def _model_name_tests(path, names) -> list[str]:
    """``x == "<model name>"`` (or ``!=``, ``in (...)``) comparisons in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Compare):
            consts = [c for c in ast.walk(node) if isinstance(c, ast.Constant) and c.value in names]
            where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
            found += [f"{where}:{node.lineno} {c.value!r}" for c in consts]
    return found


def test_no_model_is_special_cased_by_name():
    """What the code needs to know about a model is its class's attribute, not a test of its name."""
    import re

    from polysent.models import MODELS

    models_dir = SRC / "models"
    found = [
        hit
        for path in sorted(SRC.rglob("*.py"))
        if not path.is_relative_to(models_dir)
        for hit in _model_name_tests(path, set(MODELS))
    ]
    quoted = "|".join(re.escape(n) for n in MODELS)
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for lineno, line in enumerate(smk.read_text().splitlines(), 1):
            if re.search(rf"""(==|!=|\bin)\s*\(?\s*["']({quoted})["']""", line):
                found.append(f"{smk.relative_to(REPO)}:{lineno}")
    assert not found, "model names tested outside polysent.models (declare it on the model class): " + ", ".join(found)


def test_the_model_name_check_sees_one(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('def f(spec):\n    return spec["name"] == "mult" or spec in ("x", "mctn")\n')
    assert [h.split()[-1] for h in _model_name_tests(module, {"mult", "mctn"})] == ["'mult'", "'mctn'"]


def test_an_older_bundles_kwargs_are_completed_by_its_model():
    from polysent.models import MODELS, model_class

    assert model_class("multilogue").bundle_kwargs({"d_h": 8}) == {"time_axis": "word", "d_h": 8}
    assert model_class("multilogue").bundle_kwargs({"time_axis": "utterance"}) == {"time_axis": "utterance"}
    assert all(cls.bundle_kwargs({"a": 1}) == {"a": 1} for name, cls in MODELS.items() if name != "multilogue")


def _logistic_expressions(path) -> list[int]:
    """Lines of ``1 / (1 + exp(-x))`` written out in ``path``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.BinOp):
            text = ast.unparse(node.right).replace(" ", "")
            if isinstance(node.right.op, ast.Add) and "exp(-" in text:
                lines.append(node.lineno)
    return lines


def test_one_sigmoid():
    found = [
        f"{path.relative_to(REPO)}:{line}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "numeric.py"
        for line in _logistic_expressions(path)
    ]
    assert not found, "logistic functions written out (use polysent.numeric.sigmoid): " + ", ".join(found)
    assert _logistic_expressions(SRC / "numeric.py")  # the check sees the one that is allowed


def test_sigmoid_is_the_expression_it_replaced():
    import numpy as np

    from polysent.numeric import sigmoid

    x = np.random.default_rng(0).normal(0, 8, 1000).astype(np.float32)
    assert sigmoid(x).dtype == np.float32 and sigmoid(x).tobytes() == (1.0 / (1.0 + np.exp(-x))).tobytes()
    assert sigmoid(0.3) == 1.0 / (1.0 + np.exp(-0.3))


SHARD_STAGES = ("polysent.media", "polysent.features.acoustic", "polysent.features.visual", "polysent.align")
LANGUAGE_STAGES = ("polysent.text", "polysent.store")


def _entry_points():
    import importlib

    for name in SHARD_STAGES:
        yield name, importlib.import_module(name).run_shard, ("manifest", "shard", "out", "qc_path", "cfg")
    for name in LANGUAGE_STAGES:
        yield name, importlib.import_module(name).run_language, ("manifest", "lang", "out", "qc_path", "cfg")


def test_every_stage_has_the_one_entry_point_signature():
    """Per shard ``run_shard(manifest, shard, out, qc_path, cfg, *, ...)``, per language
    ``run_language(manifest, lang, out, qc_path, cfg, *, ...)`` (docs/CONTRIBUTING.md): the five
    leading parameters positional and required, everything else keyword-only, and the thread
    count (the rule's, not a default) required where a stage takes one."""
    import inspect

    for name, entry, lead in _entry_points():
        params = list(inspect.signature(entry).parameters.values())
        assert tuple(p.name for p in params[: len(lead)]) == lead, name
        assert all(p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty for p in params[: len(lead)]), name
        assert all(p.kind is p.KEYWORD_ONLY for p in params[len(lead) :]), name
        threads = [p for p in params if p.name == "threads"]
        assert name == "polysent.store" or (threads and threads[0].default is inspect.Parameter.empty), name


def test_the_runlog_job_arguments_fit_every_stage_entry_point():
    """scripts/<stage>.py pass runlog.shard_job / runlog.language_job to their stage: each entry
    point takes exactly those names (a renamed parameter fails here, not in a job)."""
    import inspect
    from types import SimpleNamespace

    from polysent import runlog

    job = SimpleNamespace(
        input=SimpleNamespace(manifest="m.parquet"),
        wildcards=SimpleNamespace(shard="003", lang="fr"),
        output=SimpleNamespace(qc="qc.parquet"),
        params=SimpleNamespace(cfg={"k": 1}),
        threads=4,
    )
    shard = runlog.shard_job(job, "o.parquet")
    assert shard == {
        "manifest": "m.parquet",
        "shard": "003",
        "out": "o.parquet",
        "qc_path": "qc.parquet",
        "cfg": {"k": 1},
        "threads": 4,
    }
    lang = runlog.language_job(job, "o.parquet")
    assert lang == {"manifest": "m.parquet", "lang": "fr", "out": "o.parquet", "qc_path": "qc.parquet", "cfg": {"k": 1}}
    for name, entry, lead in _entry_points():
        args = shard if lead[1] == "shard" else lang
        assert set(args) <= set(inspect.signature(entry).parameters), name


def test_each_stage_adapter_calls_its_entry_point():
    """scripts/<stage>.py imports its stage's run_shard / run_language and nothing else from it."""
    for module in SHARD_STAGES + LANGUAGE_STAGES:
        script = module.rsplit(".", 1)[-1]
        tree = ast.parse((REPO / "scripts" / f"{script}.py").read_text())
        imported = {
            (node.module, alias.name)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == module
            for alias in node.names
        }
        entry = "run_language" if module in LANGUAGE_STAGES else "run_shard"
        assert imported == {(module, entry)}, script


def test_no_second_name_for_a_stage_entry_point_or_the_store_reader():
    """The per-stage names the entry points replaced are gone, and one function reads a feature
    store: ``store.read_store``."""
    retired = {"build_shard", "extract_shard", "run_align", "run_text", "run_store", "load_store"}
    defined: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name in retired | {"read_store"}:
                defined.setdefault(node.name, []).append(str(path.relative_to(SRC)))
    assert defined == {"read_store": ["store.py"]}, defined


def test_the_model_facts_the_dag_reads_without_torch_are_the_classes():
    """polysent.modelfacts reads the registry and the class attributes from source (the DAG build
    must not import torch); it agrees with the imported classes for every model and attribute."""
    from polysent import modelfacts
    from polysent.models import MODELS, PolysentModel

    attrs = [
        a
        for a, v in vars(PolysentModel).items()
        if not a.startswith("_") and not callable(v) and not isinstance(v, (classmethod, staticmethod, property))
    ]
    assert "writes_decisions" in attrs and "report_group" in attrs
    assert sorted(modelfacts.registry()) == sorted(MODELS)
    for name, cls in MODELS.items():
        for attr in attrs:
            assert modelfacts.class_attribute(name, attr) == getattr(cls, attr), (name, attr)
    with pytest.raises(ValueError, match="unknown model 'nope'; registered"):
        modelfacts.class_attribute("nope", "writes_decisions")


def test_building_the_dag_does_not_import_torch():
    """The polysent imports of the Snakefile and workflow/rules/*.smk (what runs at DAG build)
    leave torch unimported: every `snakemake` call would pay seconds for it."""
    import re
    import subprocess
    import sys

    lines = [
        line.strip()
        for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
        for line in path.read_text().splitlines()
        if re.fullmatch(r"\s*(from polysent[\w.]* import .+|import polysent[\w.]*)\s*", line)
    ]
    assert any("polysent.modelfacts" in line for line in lines) and any("predict" in line for line in lines)
    code = "\n".join([*lines, "import sys", "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout


def test_stage_modules_take_threads_and_seed_without_a_default():
    """The rule (``threads:``) and the config (``seed``) own these numbers: a stage function that
    defaulted them would run with another value than the workflow's whenever a caller forgot one."""
    modules = [SRC / "media.py", SRC / "text.py", SRC / "store.py", SRC / "predict" / "stages.py"]
    modules += sorted((SRC / "features").glob("*.py")) + sorted((SRC / "align").glob("*.py"))
    found = []
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            args = node.args
            positional = args.posonlyargs + args.args
            defaults = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults) :]], args.defaults))
            defaults |= {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None}
            for name in ("threads", "seed"):
                if name in defaults and not (isinstance(defaults[name], ast.Constant) and defaults[name].value is None):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}({name}=...)")
    assert not found, found

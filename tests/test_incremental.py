"""Exact incremental re-runs on the tiny config (issue 8, item 4; issue 11).

Starting from the finished ``tiny_run`` folder (copied with mtimes and .snakemake metadata):
- a second dry run plans nothing;
- changing one parameter of a stage plans exactly the jobs whose params changed and their
  descendants, and those jobs belong to that stage's rule file;
- every job's library inputs are the import closure of its rule's script (``polysent.imports``),
  and editing any library module re-runs exactly the rules whose scripts import it, directly or
  not, and their descendants;
- touching files without changing them re-runs nothing.

Nothing here names a stage's rules or keys: stages are the rule files in workflow/rules/, their
parameters come from the config schema, each rule's modules from the imports of its ``script:``.
"Exactly the descendants" is checked against Snakemake's own ``--forcerun``, which plans the given
outputs (or rules) and everything downstream of them.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import yaml

from conftest import (
    REPO,
    SCHEMA_DIR,
    copy_finished_run,
    describe_jobs,
    planned_jobs,
    rules_in,
    snakemake,
    stage_rule_files,
)
from polysent.config import load_schema, validate_config
from polysent.imports import ImportGraph

pytestmark = pytest.mark.workflow

TINY = ("--configfile", "config/tiny.yaml")
# Rule files whose rules read another section's config slice.
SECTION_OF_FILE = {"corpus_external": "corpus"}
# Rule files with no job in the tiny DAG: the tiny config names no `predict:` entry and no
# `transfer.languages`, so there is no parameter whose change could plan one
# (tests/test_predict.py and tests/test_transfer.py plan and run those rules).
NOT_IN_TINY_DAG = {"predict", "transfer"}


def _tiny_config() -> dict:
    return validate_config(yaml.safe_load((REPO / "config" / "tiny.yaml").read_text()), SCHEMA_DIR)


def _stages() -> dict[str, list[str]]:
    """Config section -> rules defined by the rule files of that section (only stages with rules)."""
    sections: dict[str, list[str]] = {}
    schema_sections = load_schema(SCHEMA_DIR)["properties"]
    for stem, smk in stage_rule_files().items():
        section = SECTION_OF_FILE.get(stem, stem)
        if section in schema_sections and section not in NOT_IN_TINY_DAG:
            sections.setdefault(section, []).extend(rules_in(smk))
    return {s: r for s, r in sections.items() if r}


STAGES = _stages()


# --- choosing a parameter to change --------------------------------------------------------------


def _perturb(schema: dict, value):
    """A different valid value for a scalar config leaf, or None when there is no obvious one."""
    kind = schema.get("type")
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    hi = schema.get("maximum", schema.get("exclusiveMaximum"))

    def ok(v):
        return (lo is None or v > lo or (v == lo and "minimum" in schema)) and (
            hi is None or v < hi or (v == hi and "maximum" in schema)
        )

    if isinstance(value, bool) or kind == "boolean":
        return not value
    if kind == "integer" and isinstance(value, int):
        for v in (value + 1, value - 1):
            if ok(v):
                return v
    if kind == "number" and isinstance(value, (int, float)):
        for v in ((value * 1.25 if value else 0.1), value * 0.8, value + 0.5, value - 0.5):
            if ok(v) and v != value:
                return v
    return None


def _unselected_alternative(key: str, schema: dict, values: dict) -> bool:
    """True for sub-sections of a backend/source that is not the selected one (corpus.moseas when
    corpus.source is demo): changing them cannot and should not re-run anything."""
    for sibling, sub in schema.get("properties", {}).items():
        enum = sub.get("enum") or []
        if key in enum and values.get(sibling) != key:
            return True
    return False


def candidate_changes(schema: dict, values: dict, path=()):
    """(key path, new value) for every scalar leaf that has an obvious other valid value,
    shallow keys first."""
    leaves, nested = [], []
    for key, sub in schema.get("properties", {}).items():
        if key not in values:
            continue
        value = values[key]
        if isinstance(value, dict):
            if not _unselected_alternative(key, schema, values):
                nested.append((sub, value, path + (key,)))
        elif not isinstance(value, list):
            new = _perturb(sub, value)
            if new is not None:
                leaves.append((path + (key,), new))
    yield from leaves
    for sub, value, sub_path in nested:
        yield from candidate_changes(sub, value, sub_path)


def _overlay(path: tuple[str, ...], value) -> dict:
    node: dict = {}
    root = node
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return root


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def done(tiny_run, tmp_path_factory) -> Path:
    """A copy of the finished tiny run that tests only dry-run (never modify it)."""
    return copy_finished_run(tiny_run, tmp_path_factory.mktemp("incremental") / "wf")


@pytest.fixture
def done_copy(tiny_run, tmp_path) -> Path:
    """A private copy of the finished tiny run that a test may edit."""
    return copy_finished_run(tiny_run, tmp_path / "wf")


def _outputs(jobs) -> list[str]:
    return sorted({o for j in jobs for o in j.outputs})


def _assert_exactly_descendants(workdir: Path, actual: dict, direct: list, what: str):
    """``actual`` must be ``direct`` plus everything downstream of their outputs, nothing else."""
    expected = planned_jobs(workdir, *TINY, "--forcerun", *_outputs(direct))
    assert set(actual) == set(expected), (
        f"{what}: planned jobs differ from the changed jobs and their descendants.\n"
        f"planned but not expected:\n{describe_jobs([actual[k] for k in set(actual) - set(expected)])}\n"
        f"expected but not planned:\n{describe_jobs([expected[k] for k in set(expected) - set(actual)])}"
    )


# --- tests ------------------------------------------------------------------------------------


def test_full_run_then_nothing_to_do(done):
    jobs = planned_jobs(done, *TINY)
    assert not jobs, f"a finished run plans jobs again:\n{describe_jobs(jobs)}"


@pytest.mark.parametrize("section", sorted(STAGES))
def test_param_change_reruns_only_that_stage_and_descendants(done, section, tmp_path):
    schema = load_schema(SCHEMA_DIR)["properties"][section]
    values = _tiny_config()[section]
    tried = []
    for key_path, new in candidate_changes(schema, values, (section,)):
        overlay = tmp_path / f"overlay-{len(tried)}.yaml"
        overlay.write_text(yaml.safe_dump(_overlay(key_path, new)))
        actual = planned_jobs(done, "--configfile", "config/tiny.yaml", str(overlay))
        tried.append(f"{'.'.join(key_path)}={new!r}: {len(actual)} job(s)")
        if actual:
            break
        if len(tried) == 4:
            break
    else:
        if not tried:
            pytest.fail(f"config section {section!r} has no numeric/boolean parameter to change")
    assert actual, (
        f"changing a parameter of {section!r} re-ran nothing (do its rules carry the config slice "
        f"as params?). Tried: {tried}"
    )
    direct = [j for j in actual.values() if "Params have changed" in j.reason]
    assert direct, f"no job reports changed params:\n{describe_jobs(actual)}"
    outside = {j.rule for j in direct} - set(STAGES[section])
    assert not outside, f"{tried[-1]} changed the params of rules outside stage {section!r}: {sorted(outside)}"
    _assert_exactly_descendants(done, actual, direct, f"{section}: {tried[-1]}")


# --- library edits: the rules' lib inputs are their scripts' import closures -------------------

_RULE_START = re.compile(r"^[ \t]*(?:rule|checkpoint) (\w+):", re.M)
_SCRIPT = re.compile(r"^[ \t]+script:\s*\"([^\"]+)\"", re.M)
LIB_ROOT = "src/polysent"


def rule_scripts(workdir: Path) -> dict[str, Path]:
    """Rule -> the ``script:`` adapter it runs, as declared in the rule files of ``workdir``."""
    scripts: dict[str, Path] = {}
    for smk in sorted((workdir / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = list(_RULE_START.finditer(text))
        for i, m in enumerate(starts):
            block = text[m.start() : starts[i + 1].start() if i + 1 < len(starts) else len(text)]
            script = _SCRIPT.search(block)
            if script:
                scripts[m.group(1)] = (smk.parent / script.group(1)).resolve()
    return scripts


def script_closures(workdir: Path) -> dict[str, set[str]]:
    """Rule -> library files (relative to ``workdir``) that its script imports, directly or not."""
    graph = ImportGraph(workdir / LIB_ROOT)
    return {rule: {f"{LIB_ROOT}/{m}" for m in graph.closure(script)} for rule, script in rule_scripts(workdir).items()}


def library_modules(workdir: Path) -> list[str]:
    return sorted(p.relative_to(workdir).as_posix() for p in (workdir / LIB_ROOT).rglob("*.py"))


def summary_inputs(workdir: Path) -> dict[str, tuple[str, set[str]]]:
    """Output file -> (rule, input files) of every job of the finished DAG (``--detailed-summary``;
    the inputs are those Snakemake recorded when the job ran, i.e. the rules' inputs of the run)."""
    out = snakemake(workdir, "--detailed-summary", *TINY).stdout
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("output_file\t"))
    header = lines[start].split("\t")
    col_rule, col_input = header.index("rule"), header.index("input-file(s)")
    jobs = {}
    for line in lines[start + 1 :]:
        cells = line.split("\t")
        if len(cells) == len(header):
            inputs = {f for f in cells[col_input].split(",") if f and f != "-"}
            jobs[cells[0]] = (cells[col_rule], inputs)
    return jobs


def test_lib_inputs_are_each_scripts_import_closure(done):
    """Every job's library inputs are exactly the import closure of its rule's script."""
    closures = script_closures(done)
    jobs = summary_inputs(done)
    assert jobs, "--detailed-summary listed no job of the finished tiny run"
    wrong = []
    for output, (rule, inputs) in sorted(jobs.items()):
        # A rule without a `script:` seen here (run:/shell:, or named dynamically) has no
        # closure to derive, so it must not claim library inputs either.
        expected = closures.get(rule, set())
        libs = {f for f in inputs if f.startswith(LIB_ROOT + "/")}
        if libs != expected:
            wrong.append(
                f"  {rule} ({output}, script {rule_scripts(done).get(rule)}): "
                f"missing {sorted(expected - libs)}, extra {sorted(libs - expected)}"
            )
    listing = "\n".join(wrong)
    assert not wrong, f"library inputs differ from the scripts' import closures:\n{listing}"


def _append_comment(path: Path) -> None:
    with path.open("a") as f:
        f.write("\n# edited by tests/test_incremental.py\n")


def downstream_outputs(jobs: dict[str, tuple[str, set[str]]], rules: set[str]) -> set[str]:
    """Outputs of the jobs of ``rules`` and of every job downstream of them (``summary_inputs``)."""
    outputs = {out for out, (rule, _) in jobs.items() if rule in rules}
    while True:
        more = {out for out, (_, ins) in jobs.items() if out not in outputs and ins & outputs}
        if not more:
            return outputs
        outputs |= more


def _updated_inputs(reason: str) -> set[str]:
    """The files after "Updated input files:" in a dry run's reason (parts are joined by "; ")."""
    for part in reason.split("; "):
        if part.startswith("Updated input files: "):
            return set(part.removeprefix("Updated input files: ").split(", "))
    return set()


def test_library_edit_reruns_exactly_the_rules_importing_it(done, done_copy):
    """Edit each library module in turn: the jobs planned must be those of the rules whose
    scripts' closure holds it plus everything downstream (from the DAG's own inputs and outputs,
    ``--detailed-summary``), each re-run one for an edited module it imports. Modules imported
    by the same rules of the tiny DAG are edited together (one dry run per group, ~16 groups);
    modules that no rule of it imports must plan nothing."""
    closures = script_closures(done_copy)
    dag = summary_inputs(done)
    groups: dict[frozenset[str], list[str]] = {}
    for module in library_modules(done_copy):
        users = frozenset(r for r, _ in dag.values() if module in closures.get(r, ()))
        groups.setdefault(users, []).append(module)
    assert len(groups) > 1, f"every library module is imported by the same rules: {groups}"
    failures = []
    for users, modules in sorted(groups.items(), key=lambda g: (sorted(g[0]), g[1])):
        originals = {m: (done_copy / m).read_bytes() for m in modules}
        time.sleep(0.01)
        for m in modules:
            _append_comment(done_copy / m)
        planned = planned_jobs(done_copy, *TINY)
        for m, text in originals.items():  # same bytes again: Snakemake's checksum sees no change
            (done_copy / m).write_bytes(text)
        what = f"editing {modules} (imported by {sorted(users) or 'no rule of the tiny DAG'})"
        expected = downstream_outputs(dag, set(users))
        actual = {out for job in planned.values() for out in job.outputs}
        if actual != expected:
            failures.append(
                f"{what}:\n  planned but not expected: {sorted(actual - expected)}\n"
                f"  expected but not planned: {sorted(expected - actual)}"
            )
        direct = {k: _updated_inputs(j.reason) for k, j in planned.items()}
        direct = {k: files for k, files in direct.items() if files}
        if users and not direct:
            failures.append(f"{what}: no job reports an updated input\n{describe_jobs(planned)}")
        for (rule, wildcards), files in direct.items():
            if rule not in users or not files <= set(modules):
                failures.append(f"{what}: {rule}[{wildcards}] re-runs for updated {sorted(files)}")
    assert not failures, "\n\n".join(failures)


def test_touch_without_change_reruns_nothing(done_copy):
    """Touch every data file, library module, config and resource file: nothing is planned.

    Script adapters (scripts/*.py) are left out on purpose: for ``script:`` rules Snakemake's code
    trigger compares the script's mtime with the outputs (documented in docs/CLUSTER.md).
    """
    touched = []
    roots = ["results", "src/polysent", "config", "resources"]
    now = time.time() + 5
    for root in roots:
        for path in sorted((done_copy / root).rglob("*")):
            if path.is_file() and not path.is_symlink() and path.name != ".snakemake_timestamp":
                os.utime(path, (now, now))
                touched.append(path)
    assert touched
    jobs = planned_jobs(done_copy, *TINY)
    assert not jobs, f"touching {len(touched)} unchanged files re-ran jobs:\n{describe_jobs(jobs)}"

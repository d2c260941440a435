"""Exact incremental re-runs on the tiny config (issue 8, item 4).

Starting from the finished ``tiny_run`` folder (copied with mtimes and .snakemake metadata):
- a second dry run plans nothing;
- changing one parameter of a stage plans exactly the jobs whose params changed and their
  descendants, and those jobs belong to that stage's rule file;
- editing one stage's library module re-runs exactly the rules that list it (that stage) and
  their descendants;
- touching files without changing them re-runs nothing.

Nothing here names a stage's rules or keys: stages are the rule files in workflow/rules/, their
parameters come from the config schema, their modules from the ``lib(...)`` calls in their rule
file. "Exactly the descendants" is checked against Snakemake's own ``--forcerun FILES``, which
plans the given outputs and everything downstream of them.
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
    listed_rules,
    planned_jobs,
    rules_in,
    stage_rule_files,
)

from polysent.config import load_schema, validate_config

pytestmark = pytest.mark.workflow

TINY = ("--configfile", "config/tiny.yaml")
# Rule files whose rules read another section's config slice.
SECTION_OF_FILE = {"corpus_external": "corpus"}


def _tiny_config() -> dict:
    return validate_config(yaml.safe_load((REPO / "config" / "tiny.yaml").read_text()), SCHEMA_DIR)


def _stages() -> dict[str, list[str]]:
    """Config section -> rules defined by the rule files of that section (only stages with rules)."""
    sections: dict[str, list[str]] = {}
    schema_sections = load_schema(SCHEMA_DIR)["properties"]
    for stem, smk in stage_rule_files().items():
        section = SECTION_OF_FILE.get(stem, stem)
        if section in schema_sections:
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
            pytest.skip(f"config section {section!r} has no numeric/boolean parameter to change")
    assert actual, (
        f"changing a parameter of {section!r} re-ran nothing (do its rules carry the config slice "
        f"as params?). Tried: {tried}"
    )
    direct = [j for j in actual.values() if "Params have changed" in j.reason]
    assert direct, f"no job reports changed params:\n{describe_jobs(actual)}"
    outside = {j.rule for j in direct} - set(STAGES[section])
    assert (
        not outside
    ), f"{tried[-1]} changed the params of rules outside stage {section!r}: {sorted(outside)}"
    _assert_exactly_descendants(done, actual, direct, f"{section}: {tried[-1]}")


_RULE_START = re.compile(r"^[ \t]*(?:rule|checkpoint) (\w+):", re.M)


def _lib_modules_by_rule() -> dict[str, set[str]]:
    """Module paths (relative to src/polysent) named in each rule's lib(...) call."""
    by_rule: dict[str, set[str]] = {}
    for smk in stage_rule_files().values():
        text = smk.read_text()
        starts = list(_RULE_START.finditer(text))
        for i, m in enumerate(starts):
            block = text[m.start() : starts[i + 1].start() if i + 1 < len(starts) else len(text)]
            mods = set()
            for call in re.findall(r"\blib\(([^)]*)\)", block):
                mods.update(re.findall(r"[\"']([^\"']+\.py)[\"']", call))
            by_rule[m.group(1)] = mods
    return by_rule


def _stage_own_module(workdir: Path, section: str) -> str | None:
    """A library module listed only by this stage's rules, and by one that is in the tiny DAG."""
    by_rule = _lib_modules_by_rule()
    mine = set(STAGES[section])
    active = mine & listed_rules(workdir, *TINY)  # --forcerun rejects rules of other configs
    in_dag = {j.rule for j in planned_jobs(workdir, *TINY, "--forcerun", *sorted(active)).values()}
    others = set().union(*(mods for rule, mods in by_rule.items() if rule not in mine))
    own = set().union(*(by_rule.get(rule, set()) for rule in mine & in_dag))
    only_here = sorted(own - others)
    return only_here[0] if only_here else None


@pytest.mark.parametrize("section", sorted(STAGES))
def test_library_edit_reruns_only_that_stage(done, done_copy, section):
    module = _stage_own_module(done, section)
    if module is None:
        pytest.skip(f"stage {section!r} lists no library module of its own in lib(...)")
    path = done_copy / "src" / "polysent" / module
    assert path.exists(), f"lib({module!r}) in the {section} rules names a missing file"
    time.sleep(0.01)
    with path.open("a") as f:
        f.write("\n# edited by tests/test_incremental.py\n")
    actual = planned_jobs(done_copy, *TINY)
    direct = [
        j for j in actual.values() if "Updated input files" in j.reason and module in j.reason
    ]
    assert direct, f"editing {module} re-ran nothing:\n{describe_jobs(actual)}"
    outside = {j.rule for j in direct} - set(STAGES[section])
    assert not outside, f"editing {module} re-ran rules of other stages directly: {sorted(outside)}"
    listing = {rule for rule, mods in _lib_modules_by_rule().items() if module in mods}
    assert {j.rule for j in direct} == listing & {
        j.rule for j in actual.values()
    }, f"editing {module} should re-run every rule that lists it: {sorted(listing)}"
    _assert_exactly_descendants(done, actual, direct, f"edit of {module}")


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

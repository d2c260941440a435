"""The SLURM profile (issue 8, items 1 and 3).

Fast checks dry-run `--workflow-profile profiles/slurm` (no SLURM needed). The `slurm`-marked
test starts a real single-node SLURM on loopback (scripts/slurm_local.sh: munged, slurmctld,
slurmd), runs the tiny-config workflow through the SLURM executor with the profile, checks that
every job went through SLURM (sbatch job ids, COMPLETED with exit 0, GPU requested for training
rules) and that the outputs are byte-identical to the local `tiny_run`, then stops exactly the
daemons it started, by pid.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import (
    REPO,
    copy_finished_run,
    listed_rules,
    planned_jobs,
    rules_in,
    snakemake,
    stage_rule_files,
)

PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
SLURM_ENV = {"POLYSENT_SLURM_ACCOUNT": "polysent-test", "POLYSENT_SLURM_PARTITION": "debug"}
TINY = ("--configfile", "config/tiny.yaml")
# Overrides for a 2-core test node; everything else comes from profiles/slurm as a user runs it.
# fmt: off
LOCAL_OVERRIDES = (
    "--jobs", "4",
    "--latency-wait", "5",
    "--retries", "0",
    # no accounting database on the test node: sacct cannot answer, squeue can (slurm_local.md)
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "2",
    "--seconds-between-status-checks", "2",
    "--slurm-keep-successful-logs",
    "--max-threads", str(os.cpu_count() or 1),
)
# fmt: on
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


def _profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


def _train_rules() -> list[str]:
    smk = stage_rule_files().get("train")
    return rules_in(smk) if smk else []


# --- the profile, without SLURM ---------------------------------------------------------------


def test_default_profile_has_no_resource_keys():
    """A resource block in profiles/default would silently replace the cluster profile's
    (per-top-level-key override, snakemake.md §4.8)."""
    default = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    assert not {"default-resources", "set-resources", "resources", "set-threads"} & set(default)


def test_slurm_profile_names_only_existing_rules(workflow_copy):
    """Snakemake ignores set-resources for unknown rules; a renamed rule would lose its resources.

    Rules defined only for some configs (corpus_external, align_mfa) count as existing.
    """
    defined = {r for smk in stage_rule_files().values() for r in rules_in(smk)}
    assert listed_rules(workflow_copy, *TINY) <= defined | {"all"}  # the static parse misses nothing
    unknown = set(_profile().get("set-resources") or {}) - defined
    assert not unknown, f"profiles/slurm set-resources names rules that do not exist: {sorted(unknown)}"


def test_training_rules_get_a_gpu():
    train = _train_rules()
    assert train, "workflow/rules/train.smk defines no training rule"
    per_rule = _profile().get("set-resources") or {}
    missing = [r for r in train if not per_rule.get(r, {}).get("gpu")]
    assert not missing, f"training rules without a GPU in profiles/slurm: {missing}"


def test_slurm_dry_run_resolves_account_partition_and_resources(workflow_copy):
    proc = snakemake(
        workflow_copy,
        "--workflow-profile",
        "profiles/slurm",
        "--dry-run",
        *TINY,
        env={"POLYSENT_SLURM_ACCOUNT": "acct-x", "POLYSENT_SLURM_PARTITION": "part-y"},
    )
    text = proc.stdout + proc.stderr
    resources = re.findall(r"^\s+resources: (.*)$", text, re.M)
    assert resources, text[-3000:]
    for line in resources:
        assert "slurm_account=acct-x" in line and "slurm_partition=part-y" in line, line
        assert "mem_mb=" in line and "runtime=" in line, line
    assert "Using workflow specific profile profiles/slurm" in text
    assert "profiles/default" not in text  # a workflow profile replaces the default one


# --- a real SLURM ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """Start munged/slurmctld/slurmd via scripts/slurm_local.sh; stop exactly those, by pid."""
    if os.geteuid() != 0:
        pytest.skip("a local SLURM needs root (daemons, /etc/slurm/slurm.conf); this host runs tests as a user")
    state = tmp_path_factory.mktemp("slurm")
    # One local cluster per host at a time (/etc/slurm/slurm.conf is global): wait for another
    # test session's cluster to go away rather than fight over the config.
    lock = open("/tmp/polysent-slurm-test.lock", "w")
    deadline = time.time() + 900
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.time() > deadline:
                pytest.fail("another polysent SLURM test held /tmp/polysent-slurm-test.lock for 15 min")
            time.sleep(2)
    script = REPO / "scripts" / "slurm_local.sh"
    try:
        start = subprocess.run(["bash", str(script), "start", str(state)], capture_output=True, text=True, timeout=600)
        if start.returncode != 0:
            msg = start.stdout + start.stderr
            if "already running on this host" in msg or "apt-get" in msg and "missing" in msg:
                pytest.skip(f"this host cannot run a private SLURM: {msg.strip()}")
            logs = "".join(p.read_text()[-2000:] for p in (state / "log").glob("*.log"))
            pytest.fail(f"slurm_local.sh start failed:\n{msg}\n{logs}")
        yield state
    finally:
        subprocess.run(["bash", str(script), "stop", str(state)], timeout=120)
        # Belt and braces: every pid we recorded must be gone (never touches other processes).
        pids = state / "pids"
        if pids.exists():
            for line in pids.read_text().split("\n"):
                if line.strip():
                    pid = int(line.split()[1])
                    try:
                        os.kill(pid, 9)
                    except ProcessLookupError:
                        pass
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _scontrol(jobid: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", jobid], capture_output=True, text=True, timeout=30).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def _rule_of(slurm_log: str) -> str:
    return re.search(r"slurm_logs/rule_(\w+)/", slurm_log).group(1)


def _result_files(root: Path) -> dict[str, Path]:
    return {
        p.relative_to(root).as_posix(): p
        for p in (root / "results").rglob("*")
        if p.is_file() and p.name != ".snakemake_timestamp" and not p.name.startswith(".")
    }


def _slurm_workdir(tiny_run: Path, dest: Path) -> tuple[Path, list[str]]:
    """A copy of the finished tiny run reduced to its corpus stage, and the targets to rebuild.

    The corpus synthesis (one ~1 min job) is kept; everything after it - media, acoustic, visual,
    align, translate, text and the feature stores of every language, plus one training run (the
    GPU request) - is deleted and rebuilt through SLURM. The full tiny DAG (every training run and
    report) would take several times longer under SLURM's polling on a 2-core node.
    """
    wf = copy_finished_run(tiny_run, dest)
    files = stage_rule_files()
    corpus_rules = {r for stem in ("corpus", "corpus_external") if stem in files for r in rules_in(files[stem])}
    corpus_rules &= listed_rules(wf, *TINY)  # --forcerun rejects rules of other configs
    corpus_jobs = planned_jobs(wf, *TINY, "--forcerun", *sorted(corpus_rules))
    keep = [wf / o for j in corpus_jobs.values() if j.rule in corpus_rules for o in j.outputs]
    assert keep, "no corpus job found in the tiny DAG"
    for path in sorted((wf / "results").rglob("*"), reverse=True):
        if any(path == k or k in path.parents for k in keep) or any(path in k.parents for k in keep):
            continue
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink()
    stores = sorted(p.relative_to(tiny_run).as_posix() for p in (tiny_run / "results" / "store").glob("*.parquet"))
    runs = sorted(
        p.relative_to(tiny_run).as_posix() for p in (tiny_run / "results" / "runs").glob("*/seed*/metrics.json")
    )
    assert stores and runs, "tiny_run has no stores or training runs"
    return wf, stores + runs[:1]


@pytest.mark.slurm
@pytest.mark.workflow
def test_tiny_workflow_on_slurm_matches_local_run(slurm_cluster, tiny_run, tmp_path):
    wf, targets = _slurm_workdir(tiny_run, tmp_path / "wf")
    proc = snakemake(
        wf,
        *targets,
        "--workflow-profile",
        "profiles/slurm",
        *TINY,
        *LOCAL_OVERRIDES,
        env=SLURM_ENV,
        timeout=1500,
    )
    text = proc.stdout + proc.stderr
    (tmp_path / "slurm_run.log").write_text(text)

    submitted = SUBMITTED.findall(text)
    assert submitted, "no job was submitted to SLURM:\n" + text[-3000:]
    # Every rule with outputs ran as an sbatch job (the target rule `all` runs locally).
    ran_rules = set(re.findall(r"^rule (\w+):$", text, re.M))
    slurm_rules = {_rule_of(log) for _, log in submitted}
    assert ran_rules - {"all"} <= slurm_rules, f"rules not run via SLURM: {ran_rules - slurm_rules}"
    gpu_rules = set(_train_rules())
    for jobid, log in submitted:
        info = _scontrol(jobid)
        assert info.get("JobState") == "COMPLETED" and info.get("ExitCode") == "0:0", (jobid, info)
        assert info.get("Partition") == "debug" and info.get("Account") == "polysent-test", info
        assert Path(log).name == f"{jobid}.log" and Path(log).exists(), log
        rule = _rule_of(log)
        if rule in gpu_rules:
            assert "gpu" in info.get("TresPerJob", ""), (rule, info)
        # The job's own Snakemake ran inside the allocation: the jobstep executor's log says so.
        assert "--executor slurm-jobstep" in Path(log).read_text(), log
    # Jobs that log their SLURM_JOB_ID (polysent.runlog) must name one of the submitted ids.
    ids = {jobid for jobid, _ in submitted}
    logged = 0
    for log in (wf / "logs").rglob("*.log"):
        for seen in re.findall(r"SLURM_JOB_ID[=: ]+(\d+)", log.read_text(errors="replace")):
            assert seen in ids, (log, seen)
            logged += 1
    assert logged, "no rule log names a SLURM_JOB_ID (polysent.runlog.start logs it)"

    # Same bytes as the local run, for everything the SLURM run rebuilt.
    local, remote = _result_files(tiny_run), _result_files(wf)
    assert set(remote) <= set(local), f"only in the SLURM run: {sorted(set(remote) - set(local))}"
    for target in targets:
        assert target in remote, f"{target} was not rebuilt"
    differ = [k for k in sorted(remote) if local[k].read_bytes() != remote[k].read_bytes()]
    assert not differ, f"outputs differ between the SLURM and the local run: {differ}"

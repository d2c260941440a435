"""Every `snakemake …` and `polysent …` command that README.md and docs/*.md give works as written.

Each command is taken from the Markdown (fenced code blocks, continuation lines joined, and inline
code spans), then:

- ``snakemake ARGS`` runs as ``snakemake --dry-run ARGS`` in a private copy of the workflow whose
  ``config/config.yaml`` is the tiny config merged in, so argument order matters as it does for a
  reader (``--configfile`` takes several files: a target after it is read as a config file);
- ``polysent ARGS`` is parsed by the CLI's own parser (every subcommand and option must exist);
  its inputs are placeholders (``talk.mp4``), so it is not run.

A config file that a command names is parsed first with :func:`polysent.config.read_yaml`, which
names the file and line of a syntax error. Commands that need what a test machine lacks are
listed in ``NEEDS_ABSENT`` with the reason; nothing else is skipped.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from conftest import REPO, copy_workflow, snakemake
from polysent.cli import build_parser
from polysent.config import deep_merge, read_yaml

# docs/BENCHMARKS.md is a dated record of the commands as they were run (some configs are retired).
DOC_FILES = [REPO / "README.md", *sorted(p for p in (REPO / "docs").glob("*.md") if p.name != "BENCHMARKS.md")]

# Commands that cannot be dry-run here, with the reason; everything else runs.
NEEDS_ABSENT = {
    "snakemake --sdm conda": "a prose reference to the flag, not a command; needs conda",
    "snakemake --workflow-profile profiles/slurm --sdm conda --conda-prefix /shared/conda-envs "
    "--conda-create-envs-only": "builds conda environments: needs conda and the network",
    "snakemake --workflow-profile profiles/slurm --sdm conda --conda-prefix /shared/conda-envs "
    "results/table1.csv": "needs conda to create the rules' environments even in a dry run",
    # not a tool but a finished run: tests/test_report_workflow.py builds the report of one
    "snakemake --report results/report.html": "needs a finished run (tests/test_report_workflow.py)",
}

# Placeholders the docs use that a dry run needs as files in the workflow copy.
PLACEHOLDER_FILES = {
    # README "Use a trained model" and docs/PREDICT.md: "my.yaml holds predict: {new: ...}"
    "my.yaml": "predict: {new: {bundle: mult_t_fr_fr/seed1, media: videos/}}\n",
}

_COMMAND = re.compile(r"^(snakemake|polysent)(\s|$)")
_FENCE = re.compile(r"^\s*```")
_INLINE = re.compile(r"`((?:snakemake|polysent)\s[^`]+)`")


def _strip_comment(line: str) -> str:
    """A shell line without its trailing ``# comment`` (a ``#`` inside quotes stays)."""
    out, quote = [], None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            break
        out.append(ch)
    return "".join(out).rstrip()


def _fenced_commands(text: str) -> list[tuple[int, str]]:
    commands, inside, pending, start = [], False, "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if _FENCE.match(raw):
            inside = not inside
            pending = ""
            continue
        if not inside:
            continue
        line = raw.strip()
        if pending:
            pending += " " + _strip_comment(line).rstrip("\\").strip()
            if not line.endswith("\\"):
                commands.append((start, pending))
                pending = ""
            continue
        if _COMMAND.match(line):
            body = _strip_comment(line)
            if body.endswith("\\"):
                pending, start = body.rstrip("\\").strip(), number
            else:
                commands.append((number, body))
    return commands


def _inline_commands(text: str) -> list[tuple[int, str]]:
    out = []
    for match in _INLINE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        out.append((line, " ".join(match.group(1).split())))
    return out


def doc_commands() -> list[tuple[str, str]]:
    """(``file:line``, command) for every command in the docs, in order, without repeats."""
    seen, out = set(), []
    for path in DOC_FILES:
        text = path.read_text(encoding="utf-8")
        for line, cmd in _fenced_commands(text) + _inline_commands(text):
            # "[--manifest segments.csv instead of --media]": an alternative spelled out in prose
            cmd = re.sub(r"\[[^\]]*\]", " ", cmd)
            # "(--manifest new.csv | --media talk.mp4)": alternatives; the first one is checked
            cmd = " ".join(re.sub(r"\(([^|()]*)\|[^()]*\)", r"\1", cmd).split())
            if cmd in seen:
                continue
            seen.add(cmd)
            out.append((f"{path.relative_to(REPO)}:{line}", cmd))
    return out


COMMANDS = doc_commands()


def test_the_docs_give_the_commands_this_test_runs():
    cmds = [c for _, c in COMMANDS]
    # the paper's run, as README and docs/MOSEAS.md give it
    assert "snakemake --cores 16 results/table1.csv --configfile config/moseas.yaml" in cmds
    assert any(c.startswith("polysent predict ") for c in cmds)
    assert set(NEEDS_ABSENT) <= set(cmds), "a NEEDS_ABSENT entry no longer appears in the docs"


def test_extraction_joins_continuation_lines_and_drops_comments():
    text = "```bash\nsnakemake --cores 2 \\\n  results/x.csv   # what\npolysent media a b\n```\n`polysent x --y`"
    assert _fenced_commands(text) == [(2, "snakemake --cores 2 results/x.csv"), (4, "polysent media a b")]
    assert _inline_commands(text) == [(6, "polysent x --y")]


@pytest.fixture(scope="module")
def tiny_copy(tmp_path_factory) -> Path:
    """A workflow copy whose default config is config.yaml with config/tiny.yaml merged in."""
    wf = copy_workflow(tmp_path_factory.mktemp("docs") / "wf")
    merged = deep_merge(read_yaml(wf / "config" / "config.yaml"), read_yaml(wf / "config" / "tiny.yaml"))
    (wf / "config" / "config.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    for name, text in PLACEHOLDER_FILES.items():
        (wf / name).write_text(text)
    (wf / "videos").mkdir()
    return wf


def _config_files(argv: list[str]) -> list[str]:
    files, taking = [], False
    for arg in argv:
        if arg in ("--configfile", "--configfiles"):
            taking = True
        elif arg.startswith("-"):
            taking = False
        elif taking:
            files.append(arg)
    return files


@pytest.mark.parametrize("where,cmd", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_doc_command_works_as_written(where, cmd, tiny_copy, monkeypatch):
    if cmd in NEEDS_ABSENT:
        pytest.skip(NEEDS_ABSENT[cmd])
    tool, *argv = shlex.split(cmd.replace('"$(nproc)"', "2"))
    if tool == "polysent":
        if len(argv) == 1:  # prose naming a subcommand ("`polysent predict` runs ..."): it exists
            argv.append("--help")
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            assert exc.code == 0, f"{where}: `{cmd}` is not a valid polysent command line"
        return
    monkeypatch.chdir(tiny_copy)
    for name in _config_files(argv):
        path = tiny_copy / name
        assert path.is_file(), f"{where}: `{cmd}` reads {name} as a config file, which does not exist"
        assert isinstance(read_yaml(path), dict), f"{where}: {name} is not a YAML mapping"
    env = {"POLYSENT_SLURM_ACCOUNT": "test", "POLYSENT_SLURM_PARTITION": "debug"}
    proc = snakemake(tiny_copy, "--dry-run", *argv, check=False, timeout=300, env=env)
    assert proc.returncode == 0, f"{where}: `{cmd}` fails as written:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"

"""The sensitivity benchmark's verdict table and README's generated trust block (no training here:
scripts/bench_sensitivity.py itself is run on config/tiny.yaml by hand, see its docstring)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from polysent.report.common import ReportError
from polysent.report.findings import COLUMNS, TRUST_BEGIN, TRUST_END, replace_trust_block, trust_lines

REPO = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_sensitivity", REPO / "scripts" / "bench_sensitivity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _found(verdicts: dict[str, tuple[str, float, float, float]]) -> pd.DataFrame:
    rows = []
    for rows_label, (verdict, value, lo, hi) in verdicts.items():
        name = "zero_shot_gap" if rows_label.startswith("es") else "text_beats_audio"
        rows.append({"name": name, "claim": f"claim {name}", "metric": "r", "kind": "comparison",
                     "rows": rows_label, "n_test": 90, "seeds": "5 / 5", "paired_seeds": True,
                     "value": value, "ci_low": lo, "ci_high": hi, "level": 0.95, "p_boot": 0.01,
                     "verdict": verdict, "holds": verdict == "holds", "detail": ""})  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def test_verdicts_keep_only_when_every_run_agrees():
    bench = _bench()
    base = _found({"t vs a": ("holds", 0.4, 0.3, 0.5), "es vs fr": ("holds", 0.1, 0.01, 0.2)})
    kernel = _found({"t vs a": ("holds", 0.41, 0.3, 0.52), "es vs fr": ("inconclusive", 0.08, -0.01, 0.18)})
    corpus = _found({"t vs a": ("holds", 0.38, 0.25, 0.5), "es vs fr": ("holds", 0.12, 0.02, 0.2)})
    table = bench.compare({"base": base, "kernel": kernel, "corpus": corpus}).set_index("rows")
    assert table.loc["t vs a", "keeps"] and not table.loc["es vs fr", "keeps"]
    assert table.loc["es vs fr", "kernel"] == "inconclusive +0.080 [-0.010, 0.180]"

    class Args:
        corpus_seed, configfile = 8, "config/tiny.yaml"

    text = bench.markdown(Args, {"base": 60.0, "kernel": 30.0, "corpus": 61.0},
                          {"runs": 8, "changed": 8, "max_pred": 0.01, "max_r": 0.002},
                          table.reset_index(), "abc1234", "1.0 / 1.0 / 1.0")  # fmt: skip
    assert "ATEN_CPU_CAPABILITY=default" in text and "corpus seed 8" in text
    assert "| text_beats_audio | t vs a | r | holds +0.400 [0.300, 0.500]" in text and "| no |" in text
    assert "Holding in every run: text_beats_audio (t vs a)" in text


def test_readme_block_states_only_what_holds_and_keeps():
    found = _found({"t vs a": ("holds", 0.4, 0.3, 0.5), "es vs fr": ("holds", 0.1, 0.01, 0.2),
                    "es2 vs fr": ("inconclusive", 0.05, -0.05, 0.15)})  # fmt: skip
    keeps = pd.DataFrame({"name": ["text_beats_audio", "zero_shot_gap", "zero_shot_gap"],
                          "rows": ["t vs a", "es vs fr", "es2 vs fr"], "keeps": [True, False, True]})  # fmt: skip
    lines = trust_lines(found, keeps)
    assert (
        lines[0]
        == "- *claim text_beats_audio* (difference in r, 95 % interval): holds for t vs a +0.400 [0.300, 0.500]."
    )
    assert "held here but not under another kernel path" in lines[1] and "es vs fr +0.100" in lines[1]
    assert "does **not** hold for es2 vs fr +0.050 [-0.050, 0.150] (inconclusive)" in lines[1]
    readme = f"intro\n{TRUST_BEGIN}\n- old\n{TRUST_END}\noutro\n"
    updated = replace_trust_block(readme, lines)
    assert "- old" not in updated and updated.startswith("intro\n") and updated.endswith("outro\n")
    assert replace_trust_block(updated, lines) == updated
    with pytest.raises(ReportError, match="markers"):
        replace_trust_block("no markers", lines)
    assert TRUST_BEGIN in (REPO / "README.md").read_text()

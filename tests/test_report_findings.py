"""Findings by paired statistics (polysent.report.findings) on synthetic predictions whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from polysent.metrics import batched_sentiment_metric, sentiment_metrics
from polysent.report.common import ReportError
from polysent.report.findings import FINDING_METRICS, contrast_bootstrap, findings, findings_markdown, run_contrasts

BOOT = {"resamples": 1000, "level": 0.95, "seed": 0}


def _truth(n: int, seed: int = 0) -> np.ndarray:
    return np.clip(np.random.default_rng([seed, 99]).normal(0.3, 1.2, n), -3, 3)


def _runs(truth: np.ndarray, preds: dict[int, np.ndarray], ids: list[str] | None = None) -> list:
    ids = ids or [f"s{i:04d}" for i in range(truth.size)]
    return [
        (seed, pd.DataFrame({"segment_id": ids, "lang": "es", "split": "test", "y_true": truth, "y_pred": p}))
        for seed, p in preds.items()
    ]


def _noisy(truth: np.ndarray, noise: float, seeds: list[int], salt: int) -> dict[int, np.ndarray]:
    return {s: truth + np.random.default_rng([s, salt]).normal(0, noise, truth.size) for s in seeds}


def _compare(preds: dict, metric: str = "r", boot=BOOT) -> dict:
    spec = [{"name": "x", "claim": "a beats b", "metric": metric, "better": ["a"], "than": "b"}]
    return findings(preds, spec, boot).iloc[0].to_dict()


def test_batched_metrics_equal_the_run_metrics():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(5, 60))
        truth = np.round(rng.uniform(-3, 3, n) * 3) / 3
        truth[: n // 5] = 0.0
        pred = rng.normal(0, 1.5, (4, n))
        for metric in FINDING_METRICS:
            key = "corr" if metric == "r" else metric
            batched = batched_sentiment_metric(metric, pred, truth)
            assert batched.shape == (4,)
            expected = [sentiment_metrics(p, truth)[key] for p in pred]
            np.testing.assert_allclose(batched, expected, rtol=1e-12, atol=1e-12, err_msg=metric)
    # r of a constant prediction is undefined, as in the run metrics
    assert np.isnan(batched_sentiment_metric("r", np.zeros(5), np.arange(5.0)))
    with pytest.raises(ValueError, match="f1_non0"):
        batched_sentiment_metric("f1_non0", np.zeros(5), np.arange(5.0))


def test_a_true_difference_is_found_in_r_and_mae():
    truth = _truth(120)
    preds = {"a": _runs(truth, _noisy(truth, 0.8, [1, 2, 3], 1)), "b": _runs(truth, _noisy(truth, 1.6, [1, 2, 3], 2))}
    for metric in ("r", "mae"):
        row = _compare(preds, metric)
        assert row["verdict"] == "holds" and row["holds"] is True, metric
        assert 0 < row["ci_low"] < row["value"] < row["ci_high"]
        assert row["p_boot"] < 0.025 and row["n_test"] == 120 and row["seeds"] == "3 / 3"
    # the claim the other way round lies wholly on the wrong side
    spec = [{"name": "y", "claim": "b beats a", "metric": "r", "better": ["b"], "than": "a"}]
    assert findings(preds, spec, BOOT).iloc[0]["verdict"] == "opposite"


def test_a_null_difference_is_not_found():
    """Rows of equal skill: the one-sided 2.5 % error rate of the interval, checked over repetitions."""
    hits, covered = 0, 0
    repetitions = 40
    for rep in range(repetitions):
        truth = _truth(80, seed=rep)
        a, b = _noisy(truth, 1.0, [1, 2, 3], 10 + rep), _noisy(truth, 1.0, [1, 2, 3], 500 + rep)
        row = _compare({"a": _runs(truth, a), "b": _runs(truth, b)}, boot={**BOOT, "resamples": 400})
        hits += row["holds"] is True
        covered += row["ci_low"] <= 0 <= row["ci_high"]
    assert hits <= 4  # expected 1 of 40 at a one-sided 2.5 %; 4+ would mean an interval far too narrow
    assert covered >= 34


def test_segments_are_paired_across_rows():
    """a's absolute error is b's minus 0.05 on every segment: the paired MAE difference is 0.05 in
    every resample, however noisy the errors themselves are."""
    truth = _truth(60)
    err = np.random.default_rng(5).normal(0, 1.5, (3, 60))
    sign = np.where(err >= 0, 1.0, -1.0)
    b = {s: truth + err[i] for i, s in enumerate([1, 2, 3])}
    a = {s: truth + err[i] - 0.05 * sign[i] * (np.abs(err[i]) >= 0.05) for i, s in enumerate([1, 2, 3])}
    row = _compare({"a": _runs(truth, a), "b": _runs(truth, b)}, "mae")
    assert row["ci_low"] > 0 and row["ci_high"] - row["ci_low"] < 0.02


def test_seeds_are_paired_when_the_rows_share_them():
    """Both rows share a large per-seed effect (seed s shifts every prediction by the same offset
    in both rows); pairing seeds cancels it, drawing them independently does not."""
    truth = _truth(100)
    offsets = {1: -1.0, 2: 0.0, 3: 1.2, 4: 2.0}
    noise = np.random.default_rng(8).normal(0, 0.6, (4, 100))
    a = {s: truth + offsets[s] + noise[i] for i, s in enumerate(offsets)}
    b = {s: truth + offsets[s] + noise[i] * 1.3 for i, s in enumerate(offsets)}
    paired = _compare({"a": _runs(truth, a), "b": _runs(truth, b)}, "mae")
    # the same predictions under other seed numbers: nothing says seed 1 of a goes with seed 1 of b
    renamed = {s + 10: p for s, p in b.items()}
    unpaired = _compare({"a": _runs(truth, a), "b": _runs(truth, renamed)}, "mae")
    assert paired["paired_seeds"] and not unpaired["paired_seeds"]
    assert paired["value"] == pytest.approx(unpaired["value"])
    assert paired["verdict"] == "holds" and unpaired["verdict"] == "inconclusive"
    assert (paired["ci_high"] - paired["ci_low"]) * 5 < unpaired["ci_high"] - unpaired["ci_low"]


def test_bootstrap_is_deterministic_and_resamples_each_seed_on_the_same_segments():
    truth = _truth(50)
    preds = [np.stack(list(_noisy(truth, 1.0, [1, 2], k).values())) for k in (1, 2)]
    args = (preds, truth, [1.0, -1.0], "r", [[1, 2], [1, 2]], 300, 0.95, [0, 1])
    assert contrast_bootstrap(*args) == contrast_bootstrap(*args)
    # identical rows: every resample's contrast is exactly 0 only if seeds and segments are drawn alike
    same = contrast_bootstrap([preds[0], preds[0]], truth, [1.0, -1.0], "r", [[1, 2], [1, 2]], 300, 0.95, 0)
    assert same["ci_low"] == same["ci_high"] == 0.0


def test_recovery_is_the_contrast_with_the_midpoint():
    truth = _truth(150)
    seeds = [1, 2, 3]
    low, high = _noisy(truth, 2.5, seeds, 1), _noisy(truth, 0.7, seeds, 2)
    spec = [{"name": "rec", "claim": "mid recovers", "recovery": {"low": "low", "mid": "mid", "high": "high"}}]
    found = {}
    for name, mid in {"near_high": _noisy(truth, 0.75, seeds, 3), "near_low": _noisy(truth, 2.4, seeds, 4)}.items():
        runs = {"low": _runs(truth, low), "mid": _runs(truth, mid), "high": _runs(truth, high)}
        found[name] = findings(runs, spec, BOOT).iloc[0]
    assert found["near_high"]["verdict"] == "holds" and "recovered" in found["near_high"]["detail"]
    assert found["near_low"]["verdict"] == "opposite"
    assert found["near_high"]["seeds"] == "3 / 3 / 3" and found["near_high"]["kind"] == "recovery"


def test_rows_are_compared_on_their_shared_segments_and_mismatches_are_named():
    truth = _truth(40)
    ids = [f"s{i:04d}" for i in range(40)]
    a = _runs(truth, _noisy(truth, 0.5, [1, 2], 1))
    keep = np.abs(truth) > 0.5  # b dropped the neutral segments
    b = _runs(truth[keep], {s: p[keep] for s, p in _noisy(truth, 0.5, [1, 2], 2).items()}, list(np.array(ids)[keep]))
    row = _compare({"a": a, "b": b})
    assert row["n_test"] == int(keep.sum()) and "shared test segments" in row["detail"]
    other = _runs(truth + 1.0, _noisy(truth, 0.5, [1, 2], 3))
    with pytest.raises(ReportError, match="other labels"):
        _compare({"a": a, "b": other})
    elsewhere = _runs(truth, _noisy(truth, 0.5, [1, 2], 3), [f"t{i}" for i in range(40)])
    with pytest.raises(ReportError, match="share no test segment"):
        _compare({"a": a, "b": elsewhere})
    reseeded = a[:1] + _runs(truth[:30], {2: truth[:30]}, ids[:30])
    with pytest.raises(ReportError, match="seed 2 scored other test segments"):
        _compare({"a": reseeded, "b": a})


def test_skipped_findings_and_markdown_show_the_interval():
    truth = _truth(60)
    preds = {"a": _runs(truth, _noisy(truth, 0.6, [1, 2], 1)), "b": _runs(truth, _noisy(truth, 1.5, [1, 2], 2))}
    spec = [{"name": "x", "claim": "a beats b and zz", "metric": "r", "better": ["a", "zz"], "than": "b"}]
    found = findings(preds, spec, BOOT)
    assert found["verdict"].tolist() == ["holds", "skipped"] and found["holds"].tolist()[1] is None
    text = "\n".join(findings_markdown(found))
    lo, hi = found.loc[0, "ci_low"], found.loc[0, "ci_high"]
    assert f"[{lo:.3f}, {hi:.3f}]" in text and "**holds**" in text and "not checked" in text and "zz" in text
    with pytest.raises(ReportError, match="f1_non0"):
        findings(preds, [{**spec[0], "metric": "f1_non0"}], BOOT)


def test_seed_curve_narrows_with_seeds_and_counts_windows():
    from polysent.report.findings import seed_curve

    truth = _truth(80)
    seeds = [1, 2, 3, 4, 5, 6]
    # seed-to-seed spread of skill: each seed's noise level differs, so few seeds leave it uncertain
    a = {s: truth + np.random.default_rng([s, 1]).normal(0, 0.9 + 0.15 * (s % 3), 80) for s in seeds}
    b = {s: truth + np.random.default_rng([s, 2]).normal(0, 1.2 + 0.15 * (s % 2), 80) for s in seeds}
    spec = [{"name": "x", "claim": "a beats b", "metric": "r", "better": ["a"], "than": "b"}]
    curve = seed_curve({"a": _runs(truth, a), "b": _runs(truth, b)}, spec, {**BOOT, "resamples": 300}, [2, 6])
    two, six = curve.set_index("n_seeds").loc[2], curve.set_index("n_seeds").loc[6]
    assert two["windows"] == 6 and six["windows"] == 1
    assert six["half_width"] < two["half_width"] and 0 <= two["holds_share"] <= 1
    with pytest.raises(ReportError, match="only 6"):
        seed_curve({"a": _runs(truth, a), "b": _runs(truth, b)}, spec, BOOT, [7])


def test_configured_finding_rows_share_their_seeds():
    """Rows compared by a finding run the same seeds, so the bootstrap pairs them (and no row of a
    finding has fewer seeds than the rest)."""
    from pathlib import Path

    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "experiments.yaml").read_text())
    for spec in config["findings"]:
        rows = spec.get("better", []) + [spec.get("than")] + list(spec.get("recovery", {}).values())
        seeds = {tuple(config["experiments"][r]["seeds"]) for r in rows if r}
        assert len(seeds) == 1 and len(next(iter(seeds))) >= 3, (spec["name"], seeds)


def test_two_runs_are_contrasted_row_by_row_and_an_untouched_row_is_identical():
    """scripts/report_text_ablation.py: the same rows trained on two text encoders."""
    truth = _truth(100)
    untouched = _runs(truth, _noisy(truth, 1.2, [1, 2, 3], 5))
    first = {
        "text_row": _runs(truth, _noisy(truth, 0.7, [1, 2, 3], 1)),
        "audio_row": untouched,
        "only_first": untouched,
    }
    second = {"text_row": _runs(truth, _noisy(truth, 1.8, [1, 2, 3], 2)), "audio_row": untouched}
    table = run_contrasts(first, second, BOOT).set_index("row")
    assert list(table.index) == ["text_row", "audio_row"]  # rows of both runs only, in the first's order
    text, audio = table.loc["text_row"], table.loc["audio_row"]
    assert text["verdict"] == "holds" and not text["identical"] and text["ci_low"] > 0
    assert audio["identical"] and audio["value"] == 0 and audio["verdict"] == "inconclusive"
    # the same seeds in another row order are still identical; one changed prediction is not
    shuffled = [(seed, frame.sample(frac=1.0, random_state=0)) for seed, frame in reversed(untouched)]
    assert run_contrasts({"a": untouched}, {"a": shuffled}, BOOT).iloc[0]["identical"]
    nudged = [(seed, frame.assign(y_pred=frame["y_pred"] + (seed == 2) * 1e-9)) for seed, frame in untouched]
    assert not run_contrasts({"a": untouched}, {"a": nudged}, BOOT).iloc[0]["identical"]

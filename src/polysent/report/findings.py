"""Claims checked on the test predictions by paired statistics (``findings`` in config/experiments.yaml).

A finding claims a direction between rows of Table 1 that are scored on the **same test
segments**. It is a linear *contrast* of the rows' metric, oriented so that a positive value is
the claimed direction:

* a comparison ``better`` vs ``than``: ``m(better) - m(than)`` (for MAE, lower is better, so the
  sign flips);
* a recovery ``low`` / ``mid`` / ``high``: ``m(mid) - (m(low) + m(high)) / 2``, i.e. ``mid``
  recovers more than half of the gap from ``low`` to ``high``. It is the claim "recovers most
  of the gap" without the ratio, which is unstable when the gap is near 0; the ratio is still
  given in ``detail``.

``m(row)`` is the row's metric averaged over its seeds, each seed scored on the shared segments.

The interval is a paired, two-level bootstrap: each resample draws the test segments with
replacement (the **same** draw for every row and every seed: the rows are paired on segments)
and the seeds of each row with replacement (the same seed indices for every row when the rows
share their seed list, so that seed-level effects common to the rows cancel; independently
otherwise), and recomputes the metric per drawn seed on the drawn segments. Pearson r is not
additive over segments, so it is recomputed per resample rather than averaged from per-segment
terms. The ``level`` interval is the percentile interval of the resampled contrasts; a finding
**holds** only when the whole interval lies on the claimed side of 0 (``verdict``: ``holds``,
``inconclusive`` when it contains 0, ``opposite`` when it lies wholly on the other side).
``p_boot`` is the share of resamples at or below 0 (a one-sided bootstrap p-value).

Rows whose test segments differ (e.g. one keeps neutral segments, the other drops them) are
compared on the segments they share, and ``detail`` says so; rows with no shared segment, or
whose labels disagree on a shared segment, are an error. A finding whose rows are not in the
Table 1 selection is reported as skipped (``holds`` empty).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from polysent.config import schema_defaults
from polysent.metrics import batched_sentiment_metric
from polysent.report.common import LOWER_IS_BETTER, ReportError

# Metrics a finding may compare: those with a per-resample batched form (metrics.batched_sentiment_metric).
FINDING_METRICS = ("r", "mae", "acc2_has0", "acc2_non0", "acc7")
COLUMNS = [
    "name", "claim", "metric", "kind", "rows", "n_test", "seeds", "paired_seeds",
    "value", "ci_low", "ci_high", "level", "p_boot", "verdict", "holds", "detail",
]  # fmt: skip


def contrast_weights(spec: Mapping[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """``(label, {row: weight})`` per contrast of a finding spec (one per ``better`` row, or the recovery)."""
    if "recovery" in spec:
        rec = spec["recovery"]
        label = f"{rec['mid']} between {rec['low']} and {rec['high']}"
        return [(label, {rec["mid"]: 1.0, rec["low"]: -0.5, rec["high"]: -0.5})]
    return [(f"{better} vs {spec['than']}", {better: 1.0, spec["than"]: -1.0}) for better in spec.get("better", [])]


def scored_segments(runs: Sequence[tuple[int, pd.DataFrame]], where: str) -> tuple[list[int], pd.DataFrame, pd.Series]:
    """Seeds, predictions (segments x seeds) and truth of one row's test split.

    ``runs`` are ``(seed, predictions)`` with the predictions.parquet columns; every seed must
    score the same test segments with the same labels (same data, same split).
    """
    seeds, columns, truth = [], [], None
    for seed, frame in sorted(runs, key=lambda t: t[0]):
        test = frame[frame["split"] == "test"].set_index("segment_id")
        if test.index.has_duplicates:
            raise ReportError(f"{where} seed {seed}: test predictions repeat segment(s)")
        if truth is None:
            truth = test["y_true"].astype(float)
        elif set(test.index) != set(truth.index) or not np.allclose(test.loc[truth.index, "y_true"], truth, atol=1e-6):
            raise ReportError(f"{where}: seed {seed} scored other test segments or labels than seed {seeds[0]}")
        seeds.append(int(seed))
        columns.append(test["y_pred"].astype(float).rename(int(seed)))
    if truth is None or not len(truth):
        raise ReportError(f"{where}: no test predictions")
    return seeds, pd.concat(columns, axis=1).loc[truth.index], truth


def contrast_bootstrap(
    preds: Sequence[np.ndarray],
    truth: np.ndarray,
    weights: Sequence[float],
    metric: str,
    seed_ids: Sequence[Sequence[int]],
    resamples: int,
    level: float,
    rng_seed: int,
) -> dict[str, float | bool | int]:
    """Observed contrast and its paired bootstrap interval.

    ``preds[i]``: (seeds_i, n) predictions of row i on the shared segments, ``truth``: (n,);
    ``weights[i]``: the row's weight in the contrast (already oriented: positive = claimed
    direction). Seeds are resampled with the same indices for all rows when every row has the
    same ``seed_ids`` (paired seeds), independently otherwise.
    """
    truth = np.asarray(truth, dtype=np.float64)
    preds = [np.asarray(p, dtype=np.float64) for p in preds]
    n = truth.size
    paired = all(list(s) == list(seed_ids[0]) for s in seed_ids)
    observed = sum(w * np.nanmean(batched_sentiment_metric(metric, p, truth)) for w, p in zip(weights, preds))
    rng = np.random.default_rng(rng_seed)
    stats, chunk = [], 256
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(size, n))  # one segment draw per resample, shared by rows and seeds
        shared_seeds = rng.integers(0, len(seed_ids[0]), size=(size, len(seed_ids[0]))) if paired else None
        total = np.zeros(size)
        for w, p in zip(weights, preds):
            k = p.shape[0]
            per_seed = batched_sentiment_metric(metric, p[:, idx], truth[idx])  # (k, size)
            draw = shared_seeds if paired else rng.integers(0, k, size=(size, k))
            with np.errstate(invalid="ignore"):
                total += w * np.nanmean(per_seed[draw, np.arange(size)[:, None]], axis=1)
        stats.append(total)
    boot = np.concatenate(stats)
    finite = boot[np.isfinite(boot)]
    undefined = int(boot.size - finite.size)
    if not finite.size:
        lo = hi = p_boot = float("nan")
    else:
        alpha = (1.0 - level) / 2.0
        lo, hi = (float(v) for v in np.quantile(finite, [alpha, 1.0 - alpha]))
        p_boot = float(np.mean(finite <= 0))
    return {
        "value": float(observed),
        "ci_low": lo,
        "ci_high": hi,
        "p_boot": p_boot,
        "paired_seeds": paired,
        "undefined": undefined,
    }


def verdict_of(lo: float, hi: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "undefined"
    if lo > 0:
        return "holds"
    if hi < 0:
        return "opposite"
    return "inconclusive"


def findings(
    predictions: Mapping[str, Sequence[tuple[int, pd.DataFrame]]],
    specs: Sequence[Mapping[str, Any]],
    bootstrap: Mapping[str, Any],
) -> pd.DataFrame:
    """Check every configured finding; one output row per contrast.

    ``predictions[row]`` are the row's ``(seed, predictions.parquet frame)``; ``bootstrap`` is
    ``report.bootstrap`` (``resamples``, ``level``, ``seed``).
    """
    rows = []
    item_defaults = schema_defaults("findings", "*")
    for number, spec in enumerate(specs):
        spec = {**item_defaults, **spec}
        metric = spec["metric"]
        if metric not in FINDING_METRICS:
            raise ReportError(f"finding '{spec['name']}': metric {metric!r} is not one of {FINDING_METRICS}")
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        kind = "recovery" if "recovery" in spec else "comparison"
        base = {
            "name": spec["name"],
            "claim": spec["claim"],
            "metric": metric,
            "kind": kind,
            "level": bootstrap["level"],
        }
        for k, (label, weights) in enumerate(contrast_weights(spec)):
            missing = [r for r in weights if r not in predictions]
            if missing:
                rows.append({**base, "rows": label, "verdict": "skipped", "holds": None,
                             "detail": f"skipped: not in the Table 1 selection: {missing}"})  # fmt: skip
                continue
            rows.append({**base, "rows": label, **_contrast(spec["name"], predictions, weights, metric, sign,
                                                            bootstrap, rng_seed=[int(bootstrap["seed"]), number, k])})  # fmt: skip
    table = pd.DataFrame(rows, columns=COLUMNS).round({"value": 4, "ci_low": 4, "ci_high": 4, "p_boot": 4})
    return table.astype({"n_test": "Int64"})  # a count, empty where skipped


def _contrast(name, predictions, weights, metric, sign, bootstrap, rng_seed) -> dict[str, Any]:
    mats = {row: scored_segments(predictions[row], f"finding '{name}', row {row}") for row in weights}
    shared = None
    for _seeds, _pred, truth in mats.values():
        shared = truth.index if shared is None else shared.intersection(truth.index, sort=False)
    if not len(shared):
        raise ReportError(f"finding '{name}': rows {list(weights)} share no test segment")
    shared = shared.sort_values()
    truths = {row: m[2].loc[shared].to_numpy() for row, m in mats.items()}
    first = next(iter(truths.values()))
    for row, t in truths.items():
        if not np.allclose(t, first, atol=1e-6):
            raise ReportError(f"finding '{name}': row {row} has other labels on the shared test segments")
    preds = [mats[row][1].loc[shared].to_numpy().T for row in weights]
    seed_ids = [mats[row][0] for row in weights]
    result = contrast_bootstrap(
        preds,
        first,
        [sign * w for w in weights.values()],
        metric,
        seed_ids,
        int(bootstrap["resamples"]),
        float(bootstrap["level"]),
        rng_seed,
    )
    verdict = verdict_of(result["ci_low"], result["ci_high"])
    means = {row: float(np.nanmean(batched_sentiment_metric(metric, p, first))) for row, p in zip(weights, preds)}
    detail = f"{metric} " + " vs ".join(f"{means[row]:.3f}" for row in weights)
    if len(weights) == 3:  # recovery: the fraction of the low -> high gap that mid recovers
        mid, low, high = (means[row] for row in weights)
        gap = sign * (high - low)
        detail = (
            f"{metric}: low {low:.3f}, mid {mid:.3f}, high {high:.3f}; "
            + (f"recovered {sign * (mid - low) / gap:.0%} of the gap" if gap > 0 else "no gap: high is not better than low")
        )  # fmt: skip
    sizes = {row: len(m[2]) for row, m in mats.items()}
    if any(size != len(shared) for size in sizes.values()):
        detail += f"; compared on the {len(shared)} shared test segments (of {', '.join(map(str, sizes.values()))})"
    if result["undefined"]:
        detail += f"; {result['undefined']} resamples with {metric} undefined left out"
    return {
        "n_test": len(shared),
        "seeds": " / ".join(str(len(s)) for s in seed_ids),
        "paired_seeds": result["paired_seeds"],
        "value": result["value"],
        "ci_low": result["ci_low"],
        "ci_high": result["ci_high"],
        "p_boot": result["p_boot"],
        "verdict": verdict,
        "holds": verdict == "holds" if verdict != "undefined" else None,
        "detail": detail,
    }


def fmt_interval(row: Mapping[str, Any], digits: int = 3) -> str:
    """``"+0.134 [0.021, 0.250]"`` (the contrast and its interval), ``"n/a"`` when undefined."""
    value, lo, hi = (float(row[k]) if row[k] is not None else float("nan") for k in ("value", "ci_low", "ci_high"))
    if not np.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def findings_markdown(found: pd.DataFrame) -> list[str]:
    """The "Findings" section of results/table1.md (lines; empty when nothing was checked)."""
    if found is None or not len(found):
        return []
    level = found["level"].dropna()
    pct = f"{float(level.iloc[0]):.0%}" if len(level) else "95%"
    lines = [
        "",
        "## Findings",
        "",
        f"Claimed difference (positive = the claim's direction) with its {pct} paired bootstrap interval "
        "over test segments and seeds; a finding holds only when the interval excludes 0 on the claimed side.",
        "",
    ]
    for _name, part in found.groupby("name", sort=False):
        lines.append(f"- **{part['claim'].iloc[0]}** ({part['metric'].iloc[0]})")
        checked = part[part["verdict"] != "skipped"]
        for _, f in checked.iterrows():
            lines.append(
                f"  - {f['rows']}: **{f['verdict']}** {fmt_interval(f)} — {f['detail']} "
                f"(n = {f['n_test']}, seeds {f['seeds']})"
            )
        skipped = part[part["verdict"] == "skipped"]
        if len(skipped):
            lines.append(f"  - not checked (rows not in the Table 1 selection): {', '.join(skipped['rows'])}")
    return lines


TRUST_BEGIN = "<!-- findings:begin (generated by scripts/report_readme_trust.py from results/findings.csv) -->"
TRUST_END = "<!-- findings:end -->"


def trust_lines(found: pd.DataFrame, keeps: pd.DataFrame | None = None) -> list[str]:
    """README's list of the demo's claims from findings.csv: what holds (with its interval), what
    does not. ``keeps`` (bench_sensitivity's table: name, rows, keeps) restricts "holds" to the
    claims whose verdict also kept under another kernel path and another corpus draw."""
    found = found[found["verdict"] != "skipped"].copy()
    if keeps is not None:
        found = found.merge(keeps[["name", "rows", "keeps"]], on=["name", "rows"], how="left")
    else:
        found["keeps"] = True
    lines = []
    for _name, part in found.groupby("name", sort=False):
        claim, metric = part["claim"].iloc[0], part["metric"].iloc[0]
        held = part[(part["verdict"] == "holds") & part["keeps"].fillna(False).astype(bool)]
        fragile = part[(part["verdict"] == "holds") & ~part["keeps"].fillna(False).astype(bool)]
        failed = part[part["verdict"] != "holds"]
        pieces = []
        if len(held):
            pieces.append("holds for " + "; ".join(f"{r['rows']} {fmt_interval(r)}" for _, r in held.iterrows()))
        if len(fragile):
            pieces.append(
                "held here but not under another kernel path or corpus draw for "
                + "; ".join(f"{r['rows']} {fmt_interval(r)}" for _, r in fragile.iterrows())
            )
        if len(failed):
            pieces.append(
                "does **not** hold for "
                + "; ".join(f"{r['rows']} {fmt_interval(r)} ({r['verdict']})" for _, r in failed.iterrows())
            )
        lines.append(f"- *{claim}* (difference in {metric}, 95 % interval): " + "; ".join(pieces) + ".")
    return lines


def replace_trust_block(text: str, lines: list[str]) -> str:
    """``text`` (README) with the lines between :data:`TRUST_BEGIN` and :data:`TRUST_END` replaced."""
    if TRUST_BEGIN not in text or TRUST_END not in text:
        raise ReportError(f"README lacks the generated block's markers {TRUST_BEGIN!r} ... {TRUST_END!r}")
    head, rest = text.split(TRUST_BEGIN, 1)
    _old, tail = rest.split(TRUST_END, 1)
    return head + TRUST_BEGIN + "\n" + "\n".join(lines) + "\n" + TRUST_END + tail


def seed_curve(
    predictions: Mapping[str, Sequence[tuple[int, pd.DataFrame]]],
    specs: Sequence[Mapping[str, Any]],
    bootstrap: Mapping[str, Any],
    counts: Sequence[int],
) -> pd.DataFrame:
    """How the findings' intervals and verdicts depend on the number of seeds per row.

    For each count k, every cyclic window of k consecutive seeds (of the seeds all rows share,
    in order) is checked as if the rows had only those seeds; per finding contrast and k the
    result gives the median interval half-width and the share of windows whose verdict is
    ``holds`` — a verdict that changes between windows of k seeds is a coin flip at k.
    """
    common = sorted(set.intersection(*(set(s for s, _ in runs) for runs in predictions.values())))
    parts = []
    for k in counts:
        if k > len(common):
            raise ReportError(f"seed_curve: {k} seeds asked, the rows share only {len(common)}: {common}")
        starts = range(len(common)) if k < len(common) else [0]
        for start in starts:
            window = {common[(start + i) % len(common)] for i in range(k)}
            sub = {row: [(s, f) for s, f in runs if s in window] for row, runs in predictions.items()}
            found = findings(sub, specs, bootstrap)
            found = found[found["verdict"] != "skipped"].assign(n_seeds=k, window=start)
            parts.append(found)
    every = pd.concat(parts, ignore_index=True)
    every["half_width"] = (every["ci_high"] - every["ci_low"]) / 2
    every["holds_share"] = every["verdict"].eq("holds").astype(float)
    summary = every.groupby(["name", "rows", "n_seeds"], sort=False).agg(
        windows=("window", "size"),
        value=("value", "median"),
        half_width=("half_width", "median"),
        holds_share=("holds_share", "mean"),
    )
    return summary.reset_index().round(4)


def run_contrasts(
    first: Mapping[str, Sequence[tuple[int, pd.DataFrame]]],
    second: Mapping[str, Sequence[tuple[int, pd.DataFrame]]],
    bootstrap: Mapping[str, Any],
    metric: str = "r",
) -> pd.DataFrame:
    """Every row present in two runs of the same corpus and splits, first run against second.

    ``first[row]`` / ``second[row]`` are the row's ``(seed, predictions)`` in each run (e.g. the
    demo with the pretrained text encoder and with the ``hash`` stand-in). Per row: the paired
    contrast ``m(first) - m(second)`` with its interval and verdict, as :func:`findings` computes
    it, and ``identical``: every seed predicted exactly the same (a row that reads nothing the runs
    differ in must: the comparison's control).
    """
    common = [row for row in first if row in second]
    tagged = {f"{row}@{k}": runs[row] for row in common for k, runs in (("first", first), ("second", second))}
    specs = [
        {
            "name": row,
            "claim": "first beats second",
            "metric": metric,
            "better": [f"{row}@first"],
            "than": f"{row}@second",
        }
        for row in common
    ]
    table = findings(tagged, specs, bootstrap).drop(columns=["claim"])

    def identical(row: str) -> bool:
        a, b = sorted(first[row], key=lambda t: t[0]), sorted(second[row], key=lambda t: t[0])
        return len(a) == len(b) and all(
            sa == sb
            and fa.set_index("segment_id")["y_pred"]
            .sort_index()
            .equals(fb.set_index("segment_id")["y_pred"].sort_index())
            for (sa, fa), (sb, fb) in zip(a, b)
        )

    table.insert(1, "identical", [identical(row) for row in common])
    return table.rename(columns={"name": "row"})

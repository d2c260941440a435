"""The paper's claims checked on Table 1 (``report.findings``), with the seed spread."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from polysent.report.common import LOWER_IS_BETTER, fmt_pm


def findings(table: pd.DataFrame, specs: list[Mapping[str, Any]]) -> pd.DataFrame:
    """Check the configured claims on Table 1; one output row per comparison.

    ``improvement`` is positive when the claim's direction is observed (for MAE a lower value
    counts as better); ``spread`` is the combined seed std of the two rows, so an improvement
    smaller than it is within seed noise (said in ``detail``).
    """
    by_name = table.set_index("experiment")
    rows = []
    for spec in specs:
        metric = spec.get("metric", "r")
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        base = {"name": spec["name"], "claim": spec["claim"], "metric": metric}

        def stat(name: str) -> tuple[float, float]:
            return float(by_name.at[name, f"{metric}_mean"]), float(by_name.at[name, f"{metric}_std"])

        if "recovery" in spec:
            rec = spec["recovery"]
            needed = [rec["low"], rec["mid"], rec["high"]]
            label = f"{rec['mid']} between {rec['low']} and {rec['high']}"
            missing = [n for n in needed if n not in by_name.index]
            if missing:
                rows.append({**base, "kind": "recovery", "rows": label, "value": np.nan,
                             "spread": np.nan, "holds": None,
                             "detail": f"skipped: not in the Table 1 selection: {missing}"})  # fmt: skip
                continue
            (lo, lo_s), (mid, mid_s), (hi, hi_s) = (stat(n) for n in needed)
            gap = sign * (hi - lo)
            frac = sign * (mid - lo) / gap if gap > 0 else np.nan
            holds = bool(gap > 0 and frac >= 0.5)
            detail = (
                f"{metric}: low {fmt_pm(lo, lo_s, 3)}, mid {fmt_pm(mid, mid_s, 3)}, "
                f"high {fmt_pm(hi, hi_s, 3)}; "
                + (f"recovered {frac:.0%} of the gap" if gap > 0 else "no gap: high is not better than low")
            )  # fmt: skip
            rows.append({**base, "kind": "recovery", "rows": label, "value": frac,
                         "spread": float(np.hypot(lo_s, hi_s)), "holds": holds, "detail": detail})  # fmt: skip
            continue
        than = spec["than"]
        for better in spec.get("better", []):
            label = f"{better} vs {than}"
            missing = [n for n in (better, than) if n not in by_name.index]
            if missing:
                rows.append({**base, "kind": "comparison", "rows": label, "value": np.nan,
                             "spread": np.nan, "holds": None,
                             "detail": f"skipped: not in the Table 1 selection: {missing}"})  # fmt: skip
                continue
            (a, a_s), (b, b_s) = stat(better), stat(than)
            improvement = sign * (a - b)
            spread = float(np.hypot(a_s, b_s))
            holds = bool(improvement > 0) if np.isfinite(improvement) else None
            detail = f"{metric} {fmt_pm(a, a_s, 3)} vs {fmt_pm(b, b_s, 3)}"
            if np.isfinite(spread) and np.isfinite(improvement) and abs(improvement) < spread:
                detail += " (difference within the seed spread)"
            rows.append({**base, "kind": "comparison", "rows": label, "value": improvement,
                         "spread": spread, "holds": holds, "detail": detail})  # fmt: skip
    columns = ["name", "claim", "metric", "kind", "rows", "value", "spread", "holds", "detail"]
    return pd.DataFrame(rows, columns=columns).round({"value": 4, "spread": 4})


def findings_markdown(found: pd.DataFrame) -> list[str]:
    """The "Findings" section of results/table1.md (lines; empty when nothing was checked)."""
    if found is None or not len(found):
        return []
    lines = ["", "## Findings", ""]
    for _name, part in found.groupby("name", sort=False):
        lines.append(f"- **{part['claim'].iloc[0]}** ({part['metric'].iloc[0]})")
        checked = part[part["holds"].notna()]
        for _, f in checked.iterrows():
            verdict = "holds" if f["holds"] else "does NOT hold"
            lines.append(f"  - {f['rows']}: {verdict} — {f['detail']}")
        skipped = part[part["holds"].isna()]
        if len(skipped):
            lines.append(f"  - not checked (rows not in the Table 1 selection): {', '.join(skipped['rows'])}")
    return lines

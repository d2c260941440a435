"""The report's figures (matplotlib, PNG, written atomically).

- :func:`label_distribution` — sentiment label histogram per language with the neutral band
  (paper Fig. 1);
- :func:`modality_utilisation_figure` — AdaMML policy: share of policy steps keeping each
  modality (hard rate) with the mean policy probability (expected rate), and how many modalities
  are kept per step, per train -> eval setting (paper Fig. 4);
- :func:`learning_curves` — train / validation loss per epoch, one panel per experiment;
- :func:`prediction_scatter` — predicted vs true sentiment on the test split, one panel per
  Table 1 row;
- :func:`transfer_heatmap` — the cross-lingual transfer matrix, source x target, Pearson r and
  MAE (mean ± std over seeds in each cell).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: cluster nodes and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from polysent import contracts  # noqa: E402
from polysent.io import atomic_path  # noqa: E402
from polysent.report.common import MODALITIES, ReportError, with_report_defaults  # noqa: E402

MODALITY_COLOURS = {"text": "#4477AA", "visual": "#228833", "acoustic": "#EE6677"}
SEED_COLOURS = plt.get_cmap("tab10").colors


def save(fig, path: str | Path, dpi: int = 110) -> None:
    """Write ``fig`` as PNG atomically; no timestamp or version metadata (same input, same bytes)."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)


def _grid(n: int, ncols: int = 4, size: tuple[float, float] = (4.2, 3.4)):
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


# ----------------------------------------------------------------------------- Fig. 1


def label_distribution(
    manifest: pd.DataFrame, path: str | Path, neutral_band: float = 0.5, dpi: int = 110
) -> pd.DataFrame:
    """Histogram of sentiment labels per language, neutral band shaded; returns the counts.

    Bins are 1/3 wide and centred on multiples of 1/3, the values an average of three
    annotators' Likert scores can take.
    """
    if manifest.empty:
        raise ReportError("label distribution: the manifest has no segments")
    edges = np.arange(-3 - 1 / 6, 3 + 1 / 6 + 1e-9, 1 / 3)
    centres = (edges[:-1] + edges[1:]) / 2
    langs = list(dict.fromkeys(manifest["lang"]))
    fig, axes = _grid(len(langs), ncols=len(langs), size=(5.5, 3.8))
    counts = []
    for ax, lang in zip(axes, langs):
        y = manifest.loc[manifest["lang"] == lang, "sentiment"].astype(float).to_numpy()
        hist, _ = np.histogram(y, bins=edges)
        colours = np.where(np.abs(centres) <= neutral_band, "#BBBBBB", np.where(centres > 0, "#228833", "#CC3311"))
        ax.bar(centres, hist, width=1 / 3 * 0.9, color=colours, edgecolor="black", linewidth=0.4)
        neutral = int(np.sum(np.abs(y) <= neutral_band))
        ax.axvspan(
            -neutral_band,
            neutral_band,
            color="#FFDD88",
            alpha=0.35,
            zorder=0,
            label=f"neutral |y| ≤ {neutral_band:g}: {neutral} ({neutral / len(y):.0%})",
        )
        pos, neg = int(np.sum(y > neutral_band)), int(np.sum(y < -neutral_band))
        ax.set_title(f"{lang.upper()} — {len(y)} segments ({neg} neg., {pos} pos.)")
        ax.set_xlabel("sentiment label (Likert −3 … +3)")
        ax.set_ylabel("segments")
        ax.set_xticks(range(-3, 4))
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        counts += [{"lang": lang, "bin_centre": round(float(c), 4), "count": int(h)} for c, h in zip(centres, hist)]
    fig.suptitle("Sentiment label distribution per language (cf. paper Fig. 1)")
    save(fig, path, dpi)
    return pd.DataFrame(counts)


# ----------------------------------------------------------------------------- Fig. 4


def modality_utilisation_figure(util: pd.DataFrame, path: str | Path, dpi: int = 110) -> None:
    """Grouped bars of the hard utilisation rate (share of policy steps keeping each modality,
    ± seed std) per experiment with the expected rate (mean policy probability) as a marker on
    each bar, and stacked bars of how many modalities the policy keeps per step."""
    if util.empty:
        raise ReportError("modality utilisation: no AdaMML decisions to plot")
    exps = list(dict.fromkeys(util["experiment"]))
    ticks = []
    for exp in exps:
        first = util[util["experiment"] == exp].iloc[0]
        ticks.append(f"{first['setting'].replace('->', '→')}\n{_short(first['label'])}")
    width = max(10.0, 1.9 * len(exps) + 2)
    fig, (ax_rate, ax_count) = plt.subplots(2, 1, figsize=(width, 8.5), layout="constrained")
    x = np.arange(len(exps))
    bar = 0.8 / len(MODALITIES)
    for i, modality in enumerate(MODALITIES):
        mean, std = _measure(util, "hard_rate", modality, exps)
        # A rate lives in [0, 1]: clip the ± std whiskers there instead of drawing impossible values.
        yerr = np.vstack([np.minimum(std, mean), np.minimum(std, 1 - mean)])
        ax_rate.bar(x + (i - 1) * bar, mean, bar, yerr=yerr, capsize=3, label=f"{modality} (hard)",
                    color=MODALITY_COLOURS[modality])  # fmt: skip
        expected, _ = _measure(util, "expected_rate", modality, exps)
        ax_rate.scatter(x + (i - 1) * bar, expected, marker="D", s=22, color="white", edgecolor="black",
                        zorder=3, label="expected (mean policy prob.)" if i == 0 else None)  # fmt: skip
    ax_rate.set_ylim(0, 1.22)
    ax_rate.set_yticks(np.linspace(0, 1, 6))
    ax_rate.set_ylabel("share of policy steps kept")
    ax_rate.set_title("AdaMML policy: modality utilisation on the eval split\nhard rate (bars, mean ± std over "
                      "seeds) and expected rate = mean policy probability (◇)")  # fmt: skip
    ax_rate.set_xticks(x, ticks, fontsize=8)
    ax_rate.legend(ncols=4, fontsize=9, loc="upper center", frameon=False)
    bottom = np.zeros(len(exps))
    greys = ["#EEEEEE", "#BBBBBB", "#777777", "#333333"]
    for k in range(len(MODALITIES) + 1):
        part = util[(util["measure"] == "n_selected") & (util["key"] == str(k))].set_index("experiment")
        share = np.nan_to_num(part.reindex(exps)["mean"].to_numpy(dtype=float))
        ax_count.bar(x, share, 0.6, bottom=bottom, color=greys[k], edgecolor="black", linewidth=0.4,
                     label=f"{k} modalit{'y' if k == 1 else 'ies'}")  # fmt: skip
        bottom += share
    ax_count.set_ylim(0, 1.0)
    ax_count.set_ylabel("share of policy steps")
    ax_count.set_title("Number of modalities kept per policy step (hard decisions)")
    ax_count.set_xticks(x, ticks, fontsize=8)
    ax_count.legend(ncols=4, fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    save(fig, path, dpi)


def _measure(util: pd.DataFrame, measure: str, key: str, exps: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (NaN std as 0) of one ``measure``/``key`` per experiment, in ``exps`` order."""
    part = util[(util["measure"] == measure) & (util["key"] == key)].set_index("experiment").reindex(exps)
    return part["mean"].to_numpy(dtype=float), np.nan_to_num(part["std"].to_numpy(dtype=float))


def _short(label: str) -> str:
    """Drop the model name from an AdaMML row label (the tick already says the setting)."""
    for prefix in ("AdaMML + CLSTM", "AdaMML + Contextual LSTM"):
        if label.startswith(prefix):
            label = label[len(prefix) :].lstrip(" ,")
    return label or "no DL target"


# ----------------------------------------------------------------------------- learning curves


def learning_curves(
    histories: Mapping[str, list[tuple[int, pd.DataFrame]]],
    titles: Mapping[str, str],
    best_epochs: Mapping[str, Mapping[int, int]],
    path: str | Path,
    dpi: int = 110,
) -> None:
    """One panel per experiment: train (dashed) and validation (solid) loss per seed, the
    selected epoch marked with a dotted line."""
    if not histories:
        raise ReportError("learning curves: no training histories")
    fig, axes = _grid(len(histories))
    for ax, (exp, runs) in zip(axes, histories.items()):
        for i, (seed, hist) in enumerate(runs):
            missing = {"epoch", "train_loss", "valid_loss"} - set(hist.columns)
            if missing:
                raise ReportError(f"history of {exp}/seed{seed} lacks column(s) {sorted(missing)}")
            colour = SEED_COLOURS[i % len(SEED_COLOURS)]
            ax.plot(hist["epoch"], hist["train_loss"], "--", color=colour, linewidth=1)
            ax.plot(hist["epoch"], hist["valid_loss"], "-", color=colour, linewidth=1.5,
                    label=f"seed {seed}")  # fmt: skip
            best = best_epochs.get(exp, {}).get(seed)
            if best is not None:
                ax.axvline(best, color=colour, linestyle=":", linewidth=1)
        ax.set_title(titles.get(exp, exp), fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle("Learning curves: train (dashed) and validation (solid) loss; dotted = selected epoch")
    save(fig, path, dpi)


# ----------------------------------------------------------------------------- scatter


def prediction_scatter(
    predictions: Mapping[str, list[tuple[int, pd.DataFrame]]],
    table: pd.DataFrame,
    path: str | Path,
    dpi: int = 110,
) -> None:
    """One panel per Table 1 row: predicted vs true sentiment on the test split, seeds coloured,
    the identity line dashed, the row's mean r and MAE in the title."""
    if not predictions:
        raise ReportError("scatter: no predictions")
    rows = table.set_index("experiment")
    fig, axes = _grid(len(predictions), size=(3.8, 3.8))
    for ax, (exp, runs) in zip(axes, predictions.items()):
        lim = 3.2
        for i, (seed, pred) in enumerate(runs):
            missing = {"split", "y_true", "y_pred"} - set(pred.columns)
            if missing:
                raise ReportError(f"predictions of {exp}/seed{seed} lack column(s) {sorted(missing)}")
            test = pred[pred["split"] == "test"]
            # Keep out-of-range predictions visible instead of silently outside the axes.
            lim = max(lim, float(np.nanmax(np.abs(test["y_pred"]), initial=0)) + 0.2)
            ax.scatter(test["y_true"], test["y_pred"], s=8, alpha=0.5,
                       color=SEED_COLOURS[i % len(SEED_COLOURS)], label=f"seed {seed}")  # fmt: skip
        ax.plot([-3, 3], [-3, 3], "k--", linewidth=0.8)
        ax.set_xlim(-3.2, 3.2)
        ax.set_ylim(-lim, lim)
        ax.set_xlabel("true sentiment")
        ax.set_ylabel("predicted sentiment")
        if exp in rows.index:
            row = rows.loc[exp]
            ax.set_title(
                f"{row['label']}\n{row['train']} → {row['eval']}: r {row['r_mean']:.2f}, MAE {row['mae_mean']:.2f}",
                fontsize=8,
            )
        else:
            ax.set_title(exp, fontsize=8)
        ax.legend(fontsize=6, frameon=False, loc="upper left")
    fig.suptitle("Predicted vs true sentiment on the test split")
    save(fig, path, dpi)


# ----------------------------------------------------------------------------- transfer matrix


def transfer_heatmap(table: pd.DataFrame, path: str | Path, dpi: int = 110) -> None:
    """Two heatmaps, source (rows) x target (columns): Pearson r (diverging, 0 white) and MAE
    (darker = lower); each cell prints mean ± std over seeds, the diagonal (in-language) is boxed."""
    from polysent.report.transfer import grid, languages_of

    if table.empty:
        raise ReportError("transfer heatmap: the transfer matrix has no cells")
    langs = languages_of(table)
    n = len(langs)
    side = max(3.6, 0.9 * n + 1.8)
    fig, axes = plt.subplots(1, 2, figsize=(2 * side + 1.0, side), layout="constrained")
    panels = (
        ("r", "Pearson r", "RdBu", (-1.0, 1.0)),
        ("mae", "MAE", "viridis_r", (0.0, max(1.0, float(np.nanmax(table["mae_mean"].to_numpy(float), initial=0))))),
    )
    for ax, (stem, title, cmap, (lo, hi)) in zip(axes, panels):
        mean, std = grid(table, stem)
        image = ax.imshow(mean.to_numpy(float), cmap=cmap, vmin=lo, vmax=hi)
        fig.colorbar(image, ax=ax, shrink=0.8)
        for i, s in enumerate(langs):
            for j, t in enumerate(langs):
                m, sd = mean.loc[s, t], std.loc[s, t]
                text = "n/a" if not np.isfinite(m) else f"{m:.2f}" + (f"\n± {sd:.2f}" if np.isfinite(sd) else "")
                # dark text on light cells, light on dark ones
                shade = (m - lo) / (hi - lo) if np.isfinite(m) else 0.5
                light = shade < 0.2 or shade > 0.8 if cmap == "RdBu" else shade > 0.6
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if light else "black")
            ax.add_patch(plt.Rectangle((i - 0.45, i - 0.45), 0.9, 0.9, fill=False, edgecolor="black", linewidth=1.5))
        ax.set_xticks(range(n), [t.upper() for t in langs])
        ax.set_yticks(range(n), [s.upper() for s in langs])
        ax.set_xlabel("test (target) language")
        ax.set_ylabel("training (source) language")
        ax.set_title(title)
    model = ", ".join(sorted(set(table["model"])))
    encoder = ", ".join(sorted(set(table["text_encoder"])))
    seeds = int(table["n_seeds"].max())
    fig.suptitle(
        f"Cross-lingual transfer, {model}, text encoder {encoder}: mean ± std over {seeds} seed(s) "
        "on the target's test split"
    )
    save(fig, path, dpi)


# ----------------------------------------------------------------------------- stage entry points
# One call per Snakemake rule (scripts/report_*.py).


def build_label_distribution(manifest_path: str, report: Mapping, png_path: str) -> pd.DataFrame:
    from polysent.report.common import read_manifest

    manifest, _ = read_manifest(manifest_path)
    report = with_report_defaults(report)
    return label_distribution(manifest, png_path, float(report["neutral_band"]), int(report["dpi"]))


def build_modality_utilisation(
    decision_paths: list[str], experiments: Mapping, report: Mapping, png_path: str, csv_path: str
) -> pd.DataFrame:
    from polysent.contracts import read_decisions
    from polysent.io import write_csv
    from polysent.report.runs import group_by_experiment
    from polysent.report.utilisation import modality_utilisation

    decisions = group_by_experiment(decision_paths, loader=lambda path: read_decisions(path).to_pandas())
    ordered = {name: decisions[name] for name in experiments if name in decisions}
    report = with_report_defaults(report)
    util = modality_utilisation(ordered, experiments, report["utilisation_split"])
    write_csv(csv_path, util)
    modality_utilisation_figure(util, png_path, int(report["dpi"]))
    return util


def build_learning_curves(
    history_paths: list[str], metric_paths: list[str], experiments: Mapping, report: Mapping,
    png_path: str,
) -> None:  # fmt: skip
    from polysent.report.common import setting
    from polysent.report.runs import load_metrics, parse_run_path

    histories = _with_seeds(history_paths, pd.read_csv)
    best: dict[str, dict[int, int]] = {}
    for path in metric_paths:
        exp, seed = parse_run_path(path)
        epoch = load_metrics(path).get("best_epoch")
        if epoch is not None:
            best.setdefault(exp, {})[seed] = int(epoch)
    titles = {n: f"{e.get('label', n)}\n{setting(e).replace('->', '→')}" for n, e in experiments.items()}
    ordered = {n: histories[n] for n in experiments if n in histories}
    learning_curves(ordered, titles, best, png_path, int(with_report_defaults(report)["dpi"]))


def build_scatter(prediction_paths: list[str], table1_csv: str, report: Mapping, png_path: str) -> None:
    table = pd.read_csv(table1_csv)
    predictions = _with_seeds(prediction_paths, lambda p: contracts.read_predictions(p).to_pandas())
    ordered = {n: predictions[n] for n in table["experiment"] if n in predictions}
    prediction_scatter(ordered, table, png_path, int(with_report_defaults(report)["dpi"]))


def _with_seeds(paths: list[str], loader) -> dict[str, list[tuple[int, pd.DataFrame]]]:
    """Load run files grouped by experiment as (seed, frame) pairs, seeds ascending."""
    from polysent.report.runs import parse_run_path

    grouped: dict[str, list[tuple[int, pd.DataFrame]]] = {}
    for path in paths:
        exp, seed = parse_run_path(path)
        grouped.setdefault(exp, []).append((seed, loader(path)))
    return {exp: sorted(runs, key=lambda t: t[0]) for exp, runs in grouped.items()}


def build_transfer_heatmap(matrix_csv: str, report: Mapping, png_path: str) -> None:
    transfer_heatmap(pd.read_csv(matrix_csv), png_path, int(report["dpi"]))

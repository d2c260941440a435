"""Report stage: the paper's tables and figures from the per-run results of the train stage.

- :mod:`polysent.report.runs` — which runs a table reads (``report.table1`` / ``emotions``,
  seeds) and reading their ``metrics.json``;
- :mod:`polysent.report.table1` — Table 1 (mean ± std over seeds next to the paper's numbers,
  with footnotes on the paper's protocol) and :mod:`polysent.report.findings`, the configured
  claims checked on the rows' test predictions by a paired bootstrap over test segments and seeds;
- :mod:`polysent.report.table2` — emotion label counts (the paper's Table 2);
- :mod:`polysent.report.emotions` — the emotion detection table;
- :mod:`polysent.report.utilisation` — AdaMML modality-utilisation rates;
- :mod:`polysent.report.common` — what they share: the error type, metric names, the seed
  aggregate, number formatting, the data-setting description, the manifest reader;
- :mod:`polysent.report.figures` — label distribution (paper Fig. 1), modality utilisation
  (paper Fig. 4), learning curves and predicted-vs-true scatter plots.
"""

"""Report stage: the paper's tables and figures from the per-run results of the train stage.

- :mod:`polysent.report.tables` — run selection, Table 1 (mean ± std over seeds next to the
  paper's numbers), the findings checks, Table 2 (emotion label counts), the emotion detection
  table and AdaMML modality-utilisation rates;
- :mod:`polysent.report.figures` — label distribution (paper Fig. 1), modality utilisation
  (paper Fig. 4), learning curves and predicted-vs-true scatter plots.
"""

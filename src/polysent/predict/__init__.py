"""``polysent predict``: a bundle's predictions for new videos, through the workflow's own stages.

Input is a manifest (segments, optionally transcripts) or media alone (one video or a folder of
videos). media → acoustic / visual → align → text → store run with the stage functions the
workflow's rules call, configured from the **bundle's** feature settings, into a work folder;
then the bundle's model predicts the store.

One path: ``polysent predict`` and the workflow's ``results/predict/{name}.csv`` (rule
``predict``, workflow/rules/predict.smk) both call :func:`run_entry` with a ``predict.<name>``
entry completed from the schema (the CLI builds it from its options), so every setting, the text
stage's seed included, is the same on both and recorded in the output's metadata.

The parts, by job:

* :mod:`~polysent.predict.settings` — bundle resolution: each stage's settings from the bundle's
  provenance, compared with the bundle **before any compute** (a difference stops here, naming
  each key and both values, unless ``allow_feature_mismatch``); the text seed;
* :mod:`~polysent.predict.segments` — segments: the manifest's (labels, split and shard are
  optional), or found from the pauses of media (:mod:`polysent.segment`), every sound span
  found but dropped kept with its reason; transcripts from the manifest, the ASR backend
  (:mod:`polysent.asr`), or, for a text-free bundle, **pseudo-words** (windows of about
  ``pseudo_word`` seconds in place of aligned words); a text model without transcripts nor ASR
  is refused naming both ways out;
* :mod:`~polysent.predict.stages` — running the stages (the one copy of the feature DAG);
* :mod:`~polysent.predict.output` — one row per segment or span found: ``segment_id, video_id,
  start, end``, the prediction (``prediction`` for sentiment, ``prob_<label>`` per emotion),
  ``ood_<modality>`` (features outside the bundle's training range, :mod:`polysent.ood`) and
  ``reason`` (why there is no prediction, or what it rests on); CSV or Parquet, written
  atomically, with metadata (Parquet key ``polysent``, or ``<out>.json``) naming the bundle, the
  inputs, every setting, the transcripts' origin, what was not predicted and the OOD details.
"""

from polysent.predict.common import PSEUDO_WORD, PredictError
from polysent.predict.workflow import bundle_source, workflow_entry, workflow_inputs

__all__ = [
    "PSEUDO_WORD",
    "PredictError",
    "add_cli",
    "bundle_source",
    "entry_settings",
    "predict",
    "predict_manifest",
    "pseudo_words",
    "run_entry",
    "stage_configs",
    "workflow_entry",
    "workflow_inputs",
]


def __getattr__(name: str):
    """The names whose modules import torch (through the bundle) load on first use: the
    workflow's DAG build needs only :mod:`~polysent.predict.workflow` and must not pay for torch.
    The imports are written out (not ``importlib``) so that ``polysent.imports`` follows them."""
    if name == "add_cli":
        from polysent.predict.command import add_cli

        return add_cli
    if name in ("predict", "predict_manifest", "run_entry"):
        from polysent.predict import run

        return getattr(run, name)
    if name == "pseudo_words":
        from polysent.predict.segments import pseudo_words

        return pseudo_words
    if name in ("entry_settings", "stage_configs"):
        from polysent.predict import settings

        return getattr(settings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

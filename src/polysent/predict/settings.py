"""Bundle resolution: the settings every stage runs with, taken from the bundle, and the predict
entry's own settings (schema-completed), identical for ``polysent predict`` and the workflow."""

from __future__ import annotations

import json
import logging

from polysent.bundle import Bundle, Difference, check_features
from polysent.config import complete, deep_merge
from polysent.predict.common import ALIGN_RATE, SHARD_STAGES, PredictError

log = logging.getLogger("polysent.predict")


def entry_settings(entry: dict | None = None) -> dict:
    """A ``predict.<name>`` entry (the CLI builds the same from its options) with the schema's
    defaults filled in and validated."""
    return complete({"bundle": "-", **(entry or {})}, "predict", "entry")


def reference(bundle: Bundle, lang: str) -> dict:
    """The recorded stage settings of the bundle's store of ``lang`` (else of its evaluation language)."""
    prov = bundle.provenance
    return prov.get(lang) or prov[bundle.meta["training"]["entry"]["eval"]]


def text_seed(bundle: Bundle, lang: str, given: int | None) -> tuple[int, str]:
    """The seed of the text stage (it draws the vectors of out-of-vocabulary words when
    ``text.vectors.oov: random``) and where it came from: the predict entry's ``text_seed`` when
    given, else the seed the bundle's text provenance records, else 0."""
    recorded = (reference(bundle, lang).get("text") or {}).get("seed")
    if given is not None:
        return int(given), "predict setting text_seed"
    if recorded is not None:
        return int(recorded), "bundle (text provenance)"
    return 0, "default 0 (the bundle records no text seed)"


def stage_configs(bundle: Bundle, lang: str, overrides: dict | None = None) -> dict[str, dict]:
    """Config slices for media/acoustic/visual/align/text/store that reproduce the bundle's features.

    Taken from the provenance of the bundle's store of ``lang`` (else its evaluation language).
    ``overrides`` (stage -> dict, merged on top) exists to deviate on purpose; the deviation is
    then caught by the feature check.
    """
    ref = reference(bundle, lang)
    missing = [s for s in ("align", "acoustic", "visual", "text", "store") if not ref.get(s)]
    if missing:
        raise PredictError(
            f"{bundle.path}: no recorded settings for stage(s) {missing} "
            "(its training stores had no provenance); cannot rebuild their features"
        )
    acoustic, visual = ref["acoustic"], ref["visual"]
    cfgs = {
        "acoustic": {"backend": acoustic["backend"], acoustic["backend"]: acoustic["params"]},
        "visual": {"backend": visual["backend"], visual["backend"]: visual["params"]},
        "align": ref["align"]["params"],
        "text": ref["text"]["params"],
        "store": ref["store"]["params"] or {},
    }
    if "mode" in acoustic:  # where frames are computed (whole WAV or per segment), when recorded
        cfgs["acoustic"]["mode"] = acoustic["mode"]
    rates = sorted({ALIGN_RATE, int(acoustic.get("sample_rate") or ALIGN_RATE)})
    cfgs["media"] = {**complete({}, "media"), "sample_rates": rates}
    for stage, extra in (overrides or {}).items():
        cfgs[stage] = deep_merge(cfgs[stage], extra)
    return cfgs


def shard_stage_configs(cfgs_by_lang: dict[str, dict]) -> dict[str, dict]:
    """The media/acoustic/visual/align configs, which must be one for all languages (they run per shard)."""
    first = next(iter(cfgs_by_lang.values()))
    for lang, cfgs in cfgs_by_lang.items():
        for stage in SHARD_STAGES:
            if cfgs[stage] != first[stage]:
                raise PredictError(
                    f"the bundle's {stage} settings differ between {lang} and the other "
                    "languages of the manifest; predict one language at a time"
                )
    return {stage: first[stage] for stage in SHARD_STAGES}


def planned_settings(cfgs: dict[str, dict], lang: str) -> dict:
    """What each feature stage will record for ``cfgs``, computed without running it."""
    from polysent import align, text
    from polysent.bundle import PER_FILE_KEYS
    from polysent.features import acoustic, visual

    provs = {
        "align": align.provenance(cfgs["align"]),
        "acoustic": acoustic.provenance(acoustic.make_extractor(cfgs["acoustic"]), cfgs["acoustic"]),
        "visual": visual.provenance(cfgs["visual"]),
        "text": text.provenance(cfgs["text"], lang),
    }
    out = {s: {k: v for k, v in p.items() if k not in PER_FILE_KEYS} for s, p in provs.items()}
    return json.loads(json.dumps(out, sort_keys=True, default=str))


def precheck(bundle: Bundle, cfgs: dict, lang: str, allow_mismatch: bool) -> list[Difference]:
    """The feature check on the planned stage settings (the store's own keys come after the run)."""
    planned = planned_settings(cfgs, lang)
    ref = {s: v for s, v in reference(bundle, lang).items() if s in planned}
    shadow = Bundle(bundle.path, {**bundle.meta, "provenance": {lang: ref}}, bundle.model, bundle.normalizer)
    return check_features(shadow, planned, lang=lang, allow_mismatch=allow_mismatch)

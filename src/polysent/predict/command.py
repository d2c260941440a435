"""``polysent predict``: the command line builds a predict entry from its options, the same
entry the workflow's ``predict.<name>`` gives, and runs it (:func:`polysent.predict.run.run_entry`)."""

from __future__ import annotations

import yaml

from polysent.cliargs import key_values
from polysent.predict.settings import entry_settings


def add_cli(sub) -> None:
    d = entry_settings()
    p = sub.add_parser("predict", help="predict new videos (a manifest, one video or a folder) with a bundle")
    p.add_argument("--bundle", required=True, help="bundle folder (polysent bundle)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--manifest",
        help="Parquet/CSV manifest with segment_id, video_id, lang, start, end, video_path (transcript optional)",
    )
    src.add_argument("--media", help="one video/audio file or a folder of them (segments found from pauses)")
    p.add_argument("--lang", default=None, help="language of --media (default: the bundle's evaluation language)")
    p.add_argument("--out", required=True, help="predictions (.csv or .parquet)")
    p.add_argument("--work", default=None, help="folder for the intermediate stage files (default: next to --out)")
    p.add_argument(
        "--asr",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"speech-recognition setting (repeat; values are YAML; defaults {d['asr']}, see polysent.asr), "
        "e.g. --asr backend=faster_whisper",
    )
    p.add_argument(
        "--asr-model",
        default=None,
        help="local Whisper model directory (same as --asr backend=whisper --asr model=DIR)",
    )
    p.add_argument(
        "--segment",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"segmentation setting (repeat; defaults {d['segment']}, see polysent.segment)",
    )
    p.add_argument(
        "--pseudo-word",
        type=float,
        default=d["pseudo_word"],
        help=f"text-free bundle without transcripts: pseudo-word length in seconds (default {d['pseudo_word']})",
    )
    p.add_argument(
        "--text-seed",
        type=int,
        default=d["text_seed"],
        help="seed of the text stage (random out-of-vocabulary vectors); default: the bundle's, else 0",
    )
    p.add_argument(
        "--allow-feature-mismatch",
        action="store_true",
        help="predict although the features differ from the bundle's (recorded in the metadata)",
    )
    p.add_argument("--threads", type=int, default=d["threads"])
    p.set_defaults(func=_cli)


def entry_of(args) -> dict:
    """The predict entry the options give (the workflow's ``predict.<name>`` keys)."""
    asr_cfg = {k: yaml.safe_load(v) for k, v in key_values(args.asr, "--asr").items()}
    if args.asr_model:
        asr_cfg = {"backend": "whisper", **asr_cfg, "model": args.asr_model}
    return entry_settings(
        {
            "manifest": args.manifest,
            "media": args.media,
            "lang": args.lang,
            "allow_feature_mismatch": args.allow_feature_mismatch,
            "segment": {k: yaml.safe_load(v) for k, v in key_values(args.segment, "--segment").items()},
            "asr": asr_cfg,
            "pseudo_word": args.pseudo_word,
            "text_seed": args.text_seed,
            "threads": args.threads,
        }
    )


def _cli(args) -> int:
    from polysent.predict.run import run_entry

    rows = run_entry(args.bundle, entry_of(args), args.out, args.work)
    first = rows.columns[4]  # the first output column (prediction / prob_<label>)
    predicted = int(rows[first].notna().sum())
    print(
        f"{len(rows)} row(s): {predicted} predicted ({int(rows['reason'].isna().sum())} without a note), "
        f"{len(rows) - predicted} not predicted, each with its reason -> {args.out}"
    )
    return 0

"""The embedded demo corpus: a seeded, offline synthesizer of raw multilingual monologue videos.

Every later stage runs for real on it: transcripts come from parallel fr/es/pt/de templates and a
sentiment lexicon (:mod:`.text`), speech from espeak-ng word by word with prosody moved by the
sentiment latent (:mod:`.speech`), video from scikit-image's ``astronaut`` photograph warped by
the latent (:mod:`.face`, :mod:`.video`), labels from a MOSEAS-like generative model
(:mod:`.labels`); :mod:`.build` ties them together and writes the manifest and ground truth.

It is a stand-in for CMU-MOSEAS, not a sample of it: the provenance of every table it writes
names the backend ``demo``.
"""

from __future__ import annotations

from polysent.corpus.demo.build import build_demo_corpus, plan_corpus

__all__ = ["build_demo_corpus", "plan_corpus", "add_cli"]


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="synthesize the demo corpus (media + manifest + ground truth) offline",
        description=(
            "Synthesize the embedded demo corpus as the Snakemake rule corpus_demo does: "
            "OUT/manifest.parquet, OUT/word_truth.parquet, OUT/demo_truth.parquet, "
            "OUT/cutaways.parquet and OUT/media/{lang}/{video_id}.mp4 + .wav. "
            "Settings come from the corpus.demo slice of --config (default: schema defaults); "
            "e.g. polysent demo --config config/tiny.yaml --out /tmp/demo --workers 2"
        ),
    )
    p.add_argument("--config", metavar="YAML", help="workflow config (languages, seed, shards, corpus.demo)")
    p.add_argument("--out", default="results/corpus", help="output folder (default: results/corpus)")
    p.add_argument("--qc", help="QC Parquet to write (default: OUT/qc.parquet)")
    p.add_argument(
        "--resources", default=None, help="folder with lexicon.yaml etc. (default: resources/demo of the repository)"
    )
    p.add_argument("--workers", type=int, default=1, help="parallel video renderers (default: 1)")
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a key of corpus.demo, dotted (repeatable), e.g. --set videos_per_language=4",
    )
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from pathlib import Path

    from polysent.cliargs import dotted_overrides
    from polysent.config import deep_merge, load_config, validate_config
    from polysent.features import schema_dir

    overrides = dotted_overrides(args.set, "corpus", "demo")
    schemas = schema_dir()
    if args.config:
        config = load_config(args.config, schemas, overrides)
    else:
        config = validate_config(deep_merge({"languages": ["fr", "es"]}, overrides), schemas)
    out = Path(args.out)
    resources = Path(args.resources) if args.resources else schemas.parents[1] / "resources" / "demo"
    manifest = build_demo_corpus(
        cfg=config["corpus"]["demo"],
        languages=config["languages"],
        seed=config["seed"],
        shards=config["shards"],
        resources_dir=resources,
        manifest_path=out / "manifest.parquet",
        word_truth_path=out / "word_truth.parquet",
        truth_path=out / "demo_truth.parquet",
        cutaways_path=out / "cutaways.parquet",
        media_dir=out / "media",
        qc_path=args.qc or out / "qc.parquet",
        workers=args.workers,
    )
    print(f"{manifest.num_rows} segments in {out / 'manifest.parquet'}")
    return 0

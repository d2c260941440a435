"""`polysent` command line: run any stage on single files, outside Snakemake.

Each stage module that offers a subcommand exposes ``add_cli(subparsers)``; it registers its
parser and sets ``func`` to a callable taking the parsed args. Listing a module here is all it
takes to add a subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

STAGE_MODULES = [
    # "polysent.corpus.demo", ... each stage appends its module when it lands.
    "polysent.corpus.demo",
    "polysent.media",
    "polysent.features.acoustic",
    "polysent.features.visual",
    "polysent.corpus.moseas",
    "polysent.corpus.folder",
    "polysent.corpus.validate",
    "polysent.train",
    "polysent.align",
    "polysent.translate",
    "polysent.export",
    "polysent.bundle",
    "polysent.segment",
    "polysent.predict",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polysent",
        description="Multilingual multimodal sentiment analysis: run one pipeline stage on files.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in STAGE_MODULES:
        importlib.import_module(name).add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

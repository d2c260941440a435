"""`polysent` command line: run any stage on single files, outside Snakemake.

Each stage module that offers a subcommand exposes ``add_cli(subparsers)``; it registers its
parser and sets ``func`` to a callable taking the parsed args. Listing a module here is all it
takes to add a subcommand.

Errors: an exception whose class polysent defines (``PredictError``, ``BundleError``,
``ConfigError``, ``ManifestError``, ...) is a refusal the code raised on purpose with a message
that names the file, key or segment and what to do; so are the input errors of the readers
polysent uses (a missing or unreadable file, a Parquet/JSON/YAML file that does not parse). The
command prints that message as one line on stderr and exits with status 1; ``-v`` adds the
traceback. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys

import yaml

STAGE_MODULES = [
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

EXIT_REFUSED = 1  # argparse's usage errors keep their own status 2

log = logging.getLogger("polysent.cli")


def _reader_errors() -> tuple[type[BaseException], ...]:
    """Errors of the readers polysent uses that mean "this input file is bad", not "polysent is wrong"."""
    import pyarrow as pa

    return (OSError, json.JSONDecodeError, yaml.YAMLError, pa.ArrowInvalid, UnicodeDecodeError)


def is_refusal(err: BaseException) -> bool:
    """True for an error polysent raised on purpose (its class is defined in polysent)."""
    return any(c.__module__.split(".")[0] == "polysent" for c in type(err).__mro__[:-1])


def _inputs(args: argparse.Namespace) -> str:
    """The command's file arguments, to name where a reader's error (which may not say) comes from."""
    found = [
        f"{key}={value}"
        for key, value in sorted(vars(args).items())
        if isinstance(value, str) and key not in ("command", "func") and os.path.isfile(value)
    ]
    return f" (files given: {', '.join(found)})" if found else ""


def error_line(err: BaseException, args: argparse.Namespace) -> str:
    """The one line a refused command prints."""
    parts = [" ".join(line.split()) for line in str(err).splitlines() if line.strip()]  # a list -> "a; b; c"
    message = (parts[0] + (" " + "; ".join(parts[1:]) if parts[1:] else "")) if parts else type(err).__name__
    if is_refusal(err):
        return f"polysent {args.command}: {message}"
    return f"polysent {args.command}: cannot read an input: {type(err).__name__}: {message}{_inputs(args)}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polysent",
        description="Multilingual multimodal sentiment analysis: run one pipeline stage on files.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in STAGE_MODULES:
        importlib.import_module(name).add_cli(sub)
    for command in sub.choices.values():  # -v also after the subcommand (`polysent predict -v ...`)
        if "-v" not in command._option_string_actions:
            command.add_argument(
                "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging and tracebacks"
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except Exception as err:
        if not (is_refusal(err) or isinstance(err, _reader_errors())):
            raise
        if args.verbose:
            log.exception("traceback of the error below")
        print(error_line(err, args), file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())

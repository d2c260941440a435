"""The error types that bad input data raises, as opposed to bugs.

Stage handlers turn a bad segment or video into a QC record so that one broken file does not stop
a shard. They catch only these types: a programming error (``TypeError``, ``KeyError``,
``AttributeError``, ``NameError``, ...) fails the job with its traceback, because as a QC record
it would pass quietly whenever it hits fewer segments than ``qc.max_failure_rate``.
"""

from __future__ import annotations

import subprocess

# ValueError: empty/short/NaN input, shape and parse problems (pyarrow's ArrowInvalid too);
# OSError: missing, unreadable or truncated files (and network errors); EOFError: truncated
# streams; ArithmeticError: numeric failures on degenerate signals; SubprocessError: a tool
# (ffmpeg, espeak-ng, aeneas, MFA, OpenFace) that failed or timed out.
BASE_DATA_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    OSError,
    EOFError,
    ArithmeticError,
    subprocess.SubprocessError,
)


def data_errors(*extra: type[BaseException]) -> tuple[type[BaseException], ...]:
    """:data:`BASE_DATA_ERRORS` plus a stage's own data error types (decoder errors, ...)."""
    return BASE_DATA_ERRORS + tuple(e for e in extra if e not in BASE_DATA_ERRORS)

"""The error types that bad input data raises, as opposed to bugs.

Stage handlers turn a bad segment or video into a QC record so that one broken file does not stop
a shard. They catch only these types: a programming error (``TypeError``, ``KeyError``,
``AttributeError``, ``NameError``, ...) fails the job with its traceback, because as a QC record
it would pass quietly whenever it hits fewer segments than ``qc.max_failure_rate``. Nor is an
environment error (disk full, read-only file system, I/O error, too many open files, quota) ever
data: :func:`raise_if_environment` turns it back into a job failure, and every QC record passes
through it (:meth:`polysent.qc.QCLog.add`).
"""

from __future__ import annotations

import errno
import os
import subprocess


class PolysentError(Exception):
    """A refusal that names what is wrong (file, key or row) and what to do, in its message: the
    ``polysent`` CLI prints the message alone (``-v`` adds the traceback)."""


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


# The machine, not the input: a full or read-only disk, a failing device, too many open files, a
# quota. A stage that turned one of these into a QC record would record good segments as bad and
# the next run would reuse the record, so they always fail the job instead.
ENVIRONMENT_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EROFS", "EIO", "EMFILE", "ENFILE", "EDQUOT") if hasattr(errno, name)
)
# What a tool (ffmpeg, espeak-ng, ...) prints when it dies of one of them: strerror of each errno.
ENVIRONMENT_MESSAGES = tuple(os.strerror(code) for code in sorted(ENVIRONMENT_ERRNOS))


class EnvironmentFailure(PolysentError, OSError):
    """A stage met an environment error (disk full, read-only, I/O error, ...): the job fails."""


def environment_error(exc: BaseException | None) -> OSError | None:
    """The environment error in ``exc`` or its causes (``raise ... from``, implicit context), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def environment_message(text: str) -> str | None:
    """The environment error a tool's message names ("No space left on device"), if any."""
    return next((m for m in ENVIRONMENT_MESSAGES if m.lower() in text.lower()), None)


def raise_if_environment(exc: BaseException | None = None, text: str = "") -> None:
    """Raise :class:`EnvironmentFailure` when ``exc`` (or its causes) or a tool's ``text`` is an
    environment error; return otherwise, so the caller may record a data problem."""
    found = environment_error(exc)
    named = environment_message(text) if found is None else None
    if found is None and named is None:
        return
    code = found.errno if found is not None else next(c for c in ENVIRONMENT_ERRNOS if os.strerror(c) == named)
    what = found.strerror if found is not None else named
    where = f" ({found.filename})" if found is not None and found.filename else ""
    detail = " ".join((text or str(exc or "")).split())[-300:]
    raise EnvironmentFailure(
        code,
        f"environment error, not bad input: {what}{where}; fix the machine (free space, remount, "
        f"raise the open-file limit) and re-run the same command — no QC record was written [{detail}]",
    ) from exc

"""Atomic file writing and Parquet I/O with provenance metadata.

Every writer goes through :func:`atomic_path`: the data is written to a temporary file in the
destination folder and renamed over the target, so a killed job never leaves a half-written file
that a later run would mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from polysent.errors import PolysentError

PROVENANCE_KEY = b"polysent"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success rename it onto ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix or ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_parquet(
    target: str | os.PathLike,
    table: pa.Table,
    provenance: dict[str, Any] | None = None,
    compression: str = "zstd",
) -> None:
    """Write ``table`` atomically; ``provenance`` goes into the key-value metadata as JSON.

    Statistics and creation timestamps would make bytes differ between identical runs, so the
    writer is configured to be byte-deterministic for identical inputs.
    """
    if provenance is not None:
        meta = dict(table.schema.metadata or {})
        meta[PROVENANCE_KEY] = json.dumps(provenance, sort_keys=True, default=_json_default).encode()
        table = table.replace_schema_metadata(meta)
    with atomic_path(target, suffix=".parquet") as tmp:
        pq.write_table(table, tmp, compression=compression, write_statistics=True)


class CorruptFileError(PolysentError, ValueError):
    """A file exists but cannot be parsed (truncated, overwritten, not the format its name says)."""


def _one_line(exc: Exception, limit: int = 200) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:limit]}"


def _corrupt(path: str | os.PathLike, exc: Exception, role: str | None = None) -> CorruptFileError:
    what = f"{role} {path}" if role else f"file {path}"
    return CorruptFileError(
        f"{what} is corrupt or not a Parquet file ({_one_line(exc)}); if it is a workflow output, delete it and re-run"
    )


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None, role: str | None = None) -> pa.Table:
    """``pq.read_table`` whose parse failures name the file and the way out.

    A missing file stays ``FileNotFoundError``; a missing column stays a ``KeyError``-like Arrow
    error raised by the caller's contract check, so only undecodable bytes become CorruptFileError.
    """
    try:
        return pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        if columns is not None and _missing_columns(path, columns):
            raise
        raise _corrupt(path, exc, role) from None


def read_schema(path: str | os.PathLike, role: str | None = None) -> pa.Schema:
    """``pq.read_schema`` with the same corrupt-file message as :func:`read_parquet`."""
    try:
        return pq.read_schema(path)
    except FileNotFoundError:
        raise
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise _corrupt(path, exc, role) from None


def _missing_columns(path: str | os.PathLike, columns: list[str]) -> list[str]:
    names = set(read_schema(path).names)
    return [c for c in columns if c not in names]


def read_json(path: str | os.PathLike, role: str | None = None, error: type[Exception] | None = None) -> Any:
    """``json.loads`` of a file whose parse failures name the file (and its ``role``, e.g. "model
    bundle spec") and the way out, in one line; raised as ``error`` (default CorruptFileError)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise (error or CorruptFileError)(
            f"{f'{role} ' if role else 'file '}{path} is corrupt or not a JSON file ({_one_line(exc)}); "
            "if it is a workflow output, delete it and re-run"
        ) from None


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """The provenance dict written by :func:`write_parquet` (empty if none)."""
    meta = read_schema(path).metadata or {}
    raw = meta.get(PROVENANCE_KEY)
    return json.loads(raw) if raw else {}


def write_csv(target: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as CSV atomically."""
    with atomic_path(target, suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False)

"""Publish a run folder written inside a training group's folder at its usual place (stdlib only).

A training group (polysent.train.run_group) writes the run folders of all its experiments and
seeds under ``results/train_groups/{group}/{exp}/seed{seed}/``; the report, bundle and predict
rules read ``results/runs/{exp}/seed{seed}/``. :func:`publish` puts each file there as a hard
link when the file system allows it (no second copy of the bytes), else as a copy, atomically
(temporary name + rename) and with a fresh mtime, so Snakemake sees it newer than the group.
This module imports nothing heavy: its rule runs once per run folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def publish(
    source_dir: str | os.PathLike, targets: list[str | os.PathLike], log: str | os.PathLike | None = None
) -> None:
    """Make every ``target`` a link (or copy) of the file of the same name in ``source_dir``;
    ``log`` (if given) records where they came from."""
    source_dir = Path(source_dir)
    for target in map(Path, targets):
        source = source_dir / target.name
        if not source.is_file():
            raise FileNotFoundError(
                f"{source}: the training group wrote no {target.name} for {target.parent} "
                "(re-run its group: the group folder is incomplete)"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        try:
            os.unlink(tmp)
            try:
                os.link(source, tmp)
            except OSError:  # another file system, or links not allowed: copy the bytes
                shutil.copyfile(source, tmp)
            os.utime(tmp)  # newer than the group folder's timestamp (a link shares the group's inode)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    if log is not None:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        Path(log).write_text(f"linked from {source_dir}\n")

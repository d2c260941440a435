"""The one entry-point convention of the pipeline's stages, and the types their signatures share.

Per shard (``media``, ``features.acoustic``, ``features.visual``, ``align``)::

    run_shard(manifest, shard, out, qc_path, cfg, *, threads, [media_dir=...,] [progress=True])

Per language (``text``, ``store``)::

    run_language(manifest, lang, out, qc_path, cfg, *, [threads,] [seed,] <inputs>=...)

The five leading parameters are positional and required: the corpus manifest, the shard or
language, the stage's output (a file; a folder for ``media``), its QC table and the plain config
slice (``None``: the schema's defaults; the stage completes it with ``polysent.config.complete``).
Everything else is keyword-only: the rule's thread count (required, the rule owns it), the
stage's further inputs, the text stage's seed and ``progress``. Each returns the table it wrote.
The Snakemake adapters build the leading arguments with ``runlog.shard_job`` /
``runlog.language_job``; ``tests/test_architecture.py`` checks every signature.
"""

import os
from collections.abc import Iterable

#: a file or folder argument
PathArg = str | os.PathLike
#: several files, one per shard
PathArgs = Iterable[str | os.PathLike]
#: a shard id as the workflow's ``{shard}`` wildcard or the manifest's int gives it
Shard = str | int
#: a stage's config slice as given (``None``: the schema's defaults)
Config = dict | None

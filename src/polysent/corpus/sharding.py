"""Stable assignment of videos to shards.

The shard of a video depends only on its id (BLAKE2 hash, not Python's salted ``hash``), so adding
videos to a corpus changes only the shards those videos land in.
"""

from __future__ import annotations

import hashlib


def shard_of(video_id: str, n_shards: int) -> int:
    digest = hashlib.blake2b(video_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_shards


def shard_ids(n_shards: int) -> list[str]:
    """Shard wildcard values, zero-padded so they sort and never collide with other numbers."""
    return [f"{i:03d}" for i in range(n_shards)]


def shard_label(shard: int) -> str:
    return f"{shard:03d}"

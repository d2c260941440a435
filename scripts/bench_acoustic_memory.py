"""Peak memory of whole-WAV acoustic analysis against the WAV's length (the acoustic rule's mem_mb).

Usage: .venv/bin/python scripts/bench_acoustic_memory.py [--block-seconds B ...] SECONDS [SECONDS ...]
Each size and block setting runs in its own process (peak RSS is per process): a noise WAV of
SECONDS at 22.05 kHz, one segment over all of it, the schema's default (paper) acoustic settings.
``--block-seconds`` lists the ``acoustic.block_seconds`` values to run (default: ``0`` = one
analysis of the whole WAV, as before blocks existed, then the schema's default). Prints peak RSS
and wall time of each, and the largest absolute feature difference from the first setting.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(seconds: float, block_seconds: float | None) -> None:
    import numpy as np
    import soundfile as sf

    from polysent.config import complete
    from polysent.features import Segment
    from polysent.features.acoustic import _whole_wav, make_extractor

    sr = 22050
    cfg = complete({}, "acoustic")
    block = cfg["block_seconds"] if block_seconds is None else (block_seconds or None)
    with tempfile.TemporaryDirectory() as tmp:
        wav = str(Path(tmp) / "a.wav")
        rng = np.random.default_rng(0)
        with sf.SoundFile(wav, "w", sr, 1, subtype="PCM_16") as f:  # in pieces: no whole-WAV array
            for i in range(0, int(seconds * sr), 60 * sr):
                f.write((0.1 * rng.standard_normal(min(60 * sr, int(seconds * sr) - i))).astype(np.float32))
        extractor = make_extractor(cfg)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        frames, failures = _whole_wav(extractor, wav, sr, [Segment("s", "v", 0.0, seconds, "", "")], block)
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    feats = frames[0].features
    print(
        f"{seconds:g} s  WAV {seconds * sr * 2 / 1e6:.1f} MB  block {block or 'none'}  "
        f"peak RSS {peak:.0f} MB (before analysis {base:.0f} MB)  {wall:.0f} s  {feats.shape[0]} frames",
        flush=True,
    )
    np.save(_features_file(seconds, block or 0), feats)


def _features_file(seconds: float, block: float) -> Path:
    return Path(tempfile.gettempdir()) / f"bench_acoustic_memory_{seconds:g}_{block:g}.npy"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        one(float(sys.argv[2]), float(sys.argv[3]))
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("seconds", type=float, nargs="+")
        parser.add_argument("--block-seconds", type=float, nargs="+", default=None)
        args = parser.parse_args()
        from polysent.config import complete

        blocks = args.block_seconds or [0.0, complete({}, "acoustic")["block_seconds"]]
        for s in args.seconds:
            first = None
            for b in blocks:
                subprocess.run([sys.executable, __file__, "--one", str(s), str(b)], check=True)
                import numpy as np

                feats = np.load(_features_file(s, b))
                if first is None:
                    first = feats
                else:
                    same = feats.shape == first.shape
                    diff = float(np.abs(feats - first).max()) if same else float("nan")
                    print(
                        f"  block {b:g} vs {blocks[0]:g}: same frames {same}, max |difference| {diff:.2e}", flush=True
                    )

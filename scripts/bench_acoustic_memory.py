"""Peak memory of whole-WAV acoustic analysis against the WAV's size (the acoustic rule's mem_mb).

Usage: .venv/bin/python scripts/bench_acoustic_memory.py SECONDS [SECONDS ...]
Each size runs in its own process (peak RSS is per process): a noise WAV of SECONDS at 22.05 kHz,
one segment over all of it, the schema's default (paper) acoustic settings.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def one(seconds: float) -> None:
    import numpy as np
    import soundfile as sf

    from polysent.config import complete
    from polysent.features import Segment
    from polysent.features.acoustic import _whole_wav, make_extractor

    sr = 22050
    with tempfile.TemporaryDirectory() as tmp:
        wav = str(Path(tmp) / "a.wav")
        y = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * sr))).astype(np.float32)
        sf.write(wav, y, sr, subtype="PCM_16")
        del y
        extractor = make_extractor(complete({}, "acoustic"))
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        _whole_wav(extractor, wav, sr, [Segment("s", "v", 0.0, seconds, "", "")])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{seconds:g} s  WAV {seconds * sr * 2 / 1e6:.1f} MB  peak RSS {peak:.0f} MB (before analysis {base:.0f} MB)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        one(float(sys.argv[2]))
    else:
        for s in sys.argv[1:]:
            subprocess.run([sys.executable, __file__, "--one", s], check=True)

"""Training throughput: what every training process pays before its first step."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys, torch
from polysent.train import seed_everything
if sys.argv[1] == "inductor":
    import torch._inductor.config as inductor_config
seed_everything(1, 1)
print(torch.are_deterministic_algorithms_enabled(), "torch._inductor" in sys.modules,
      sys.modules["torch._inductor.config"].deterministic if "torch._inductor.config" in sys.modules else None)
"""


def test_deterministic_kernels_without_loading_inductor():
    """The eager determinism flag is set without importing TorchInductor/Dynamo (seconds per
    training process); when Inductor is already loaded its own flag is set as well."""
    plain = subprocess.run([sys.executable, "-c", CHECK, "plain"], capture_output=True, text=True, check=True)
    assert plain.stdout.split() == ["True", "False", "None"]
    loaded = subprocess.run([sys.executable, "-c", CHECK, "inductor"], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == ["True", "True", "True"]

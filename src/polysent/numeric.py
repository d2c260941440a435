"""Small numeric helpers shared by the library."""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    """The logistic function ``1 / (1 + exp(-x))`` of an array or scalar, in its float precision.

    Written as the expression (not ``scipy.special.expit``) so that emotion probabilities and the
    demo corpus's labels stay bit-identical to what earlier runs wrote.
    """
    return 1.0 / (1.0 + np.exp(-x))

"""Values made strict JSON: NaN and infinities become null, numpy values plain Python."""

from __future__ import annotations

import math
from typing import Any


def json_clean(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None, numpy arrays and scalars turned into
    lists and Python numbers, tuples into lists and mapping keys into strings, recursively."""
    if isinstance(obj, dict):
        return {str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_clean(v) for v in obj]
    if hasattr(obj, "tolist"):
        return json_clean(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj

"""Results over seeds: mean and standard deviation as the literature reports them, and results.json.

The standard deviation is the population one (``numpy.std``, ``ddof=0``), as
MMSA's ``run.py`` computes it for its published tables.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..atomic import write_atomic

RESULTS_FORMAT = "snn-msa-results"
RESULTS_VERSION = 1
#: results.json key -> the installed distribution whose version it records.
VERSIONED_DISTRIBUTIONS = {"snn_msa": "snn-msa", "torch": "torch", "spikingjelly": "spikingjelly", "numpy": "numpy",
                           "h5py": "h5py"}


def versions() -> dict[str, str]:
    """The installed versions of the software a result came from, read from the package metadata.

    A package's ``__version__`` attribute is not used: SpikingJelly 2.0 has none,
    which recorded ``"unknown"``. A distribution that is not installed records
    ``"not installed"``.
    """
    found = {}
    for key, distribution in VERSIONED_DISTRIBUTIONS.items():
        try:
            found[key] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            found[key] = "not installed"
    found["python"] = platform.python_version()
    return found


def mean_std(values: Iterable[float | None]) -> tuple[float | None, float | None]:
    """Mean and population standard deviation; ``None`` if any value is missing or not finite."""
    vals = list(values)
    if not vals or any(v is None or not math.isfinite(v) for v in vals):
        return None, None
    arr = np.asarray(vals, dtype=np.float64)
    return float(arr.mean()), float(arr.std())


def aggregate(per_seed: list[dict[str, float | None]]) -> dict[str, Any]:
    """``{"mean": {key: m}, "std": {key: s}, "n": seeds}`` over a list of metric dicts (same keys)."""
    keys = list(per_seed[0]) if per_seed else []
    mean, std = {}, {}
    for key in keys:
        mean[key], std[key] = mean_std(m.get(key) for m in per_seed)
    return {"mean": mean, "std": std, "n": len(per_seed)}


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities turned into ``None`` and tuples into lists (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(data: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``data`` as indented strict JSON, atomically (temporary file, then ``os.replace``)."""
    return write_atomic(path, json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")


def format_metrics(metrics: dict[str, float | None], keys: list[str] | None = None, digits: int = 4) -> str:
    """``"Mult_acc_2 0.7123  MAE 0.4011"``; a missing value prints as ``nan``."""
    keys = list(metrics) if keys is None else [k for k in keys if k in metrics]
    return "  ".join(f"{k} {_number(metrics[k], digits)}" for k in keys)


def format_mean_std(summary: dict[str, Any], keys: list[str] | None = None, digits: int = 4) -> list[str]:
    """One ``"key  mean ± std"`` line per metric of an :func:`aggregate` result."""
    mean, std = summary["mean"], summary["std"]
    keys = list(mean) if keys is None else [k for k in keys if k in mean]
    width = max((len(k) for k in keys), default=0)
    return [f"{k:<{width}}  {_number(mean[k], digits)} ± {_number(std[k], digits)}" for k in keys]


def _number(value: float | None, digits: int) -> str:
    return "nan" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"

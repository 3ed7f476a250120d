"""``evaluate_checkpoint``: rebuild a model from its checkpoint alone and score it on a split.

On the split and data a run was tested on, the metrics equal those the run
reported: the model is rebuilt from the stored config, evaluated in eval mode
with the batch size it was tested with, in the split's order. (Each sample's
prediction is its own, since scale2 is per sample; the same batch size keeps
the float sums, and so the metrics, bit for bit.)
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch

from ..data import MSADataset
from ..metrics import METRIC_KEYS, metric_family, msa_metrics
from .checkpoint import load_checkpoint, load_weights, rebuild_model
from .data_source import load_eval_data, same_data
from .errors import CheckpointError, TrainingError
from .loop import evaluate
from .results import json_safe
from .settings import resolve_device, use_threads
from ..data.validate import SPLITS


def evaluate_checkpoint(
    path: str | os.PathLike,
    data: str | os.PathLike | None = None,
    split: str = "test",
    dataset: MSADataset | None = None,
    *,
    device: str = "auto",
    batch_size: int | None = None,
    threads: int | None = None,
    allow_nonfinite: bool = False,
) -> dict[str, Any]:
    """Metrics of the checkpoint at ``path`` on ``split``.

    Args:
        path: a ``best.pt`` (or ``last.pt``: its latest weights) written by ``snn-msa train``.
        data: a feature file; ``None`` uses the data the run trained on (the
            built-in synthetic set is rebuilt; a file is read again from its stored path).
        split: ``train``, ``valid`` or ``test``.
        dataset: an already loaded ``MSADataset`` (instead of ``data``).
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: evaluation batch size (default: the one the run used, which
            reproduces its metrics exactly).
        threads: torch's CPU threads (default: the run's; 0 keeps torch's).
        allow_nonfinite: accept data with more than the documented share of
            non-finite cells (``snn_msa.data.nonfinite``).

    Returns:
        ``{"checkpoint", "model", "dataset", "data", "split", "samples", "metrics",
        "loss", "firing_rate", "firing_rates", "best_epoch", "reported", "matches_reported"}``:
        ``reported`` holds the metrics the run recorded for this split (``None``
        if it recorded none, or the split is not the one it used) and
        ``matches_reported`` whether they are equal.
    """
    if split not in SPLITS:
        raise TrainingError(f"split must be one of {', '.join(SPLITS)}, got {split!r}.")
    name = os.fspath(path)
    ckpt, model = model_from_checkpoint(name)
    ds = load_eval_data(ckpt["data"], data, dataset, allow_nonfinite=allow_nonfinite)
    check_feature_dims(ckpt, ds, name)
    torch_device = resolve_device(device)
    model.to(torch_device)
    size = int(batch_size or ckpt["recipe"]["batch_size"])
    before = use_threads(ckpt.get("threads", 0) if threads is None else threads)
    try:
        result = evaluate(model, ds.splits[split].loader(size), torch_device)
    finally:
        torch.set_num_threads(before)
    profile = ds.profile.name
    metrics = msa_metrics(result.predictions, result.labels, profile)
    same = same_data(ckpt["data"], ds, split)
    reported = _reported(ckpt, split) if same else None
    safe_metrics = json_safe(metrics)
    return json_safe({
        "checkpoint": name,
        "kind": ckpt["kind"],
        "model": ckpt["model"]["name"],
        "dataset": profile,
        "data": ds.source,
        "synthetic": bool(getattr(ds, "is_synthetic", False)),
        "same_data_as_training": same,
        "split": split,
        "samples": len(ds.splits[split]),
        "batch_size": size,
        "metric_keys": METRIC_KEYS[metric_family(profile)],
        "metrics": metrics,
        "loss": result.loss,
        "firing_rate": result.mean_firing_rate,
        "firing_rates": result.firing_rates,
        "seed": ckpt.get("seed"),
        "best_epoch": ckpt.get("best_epoch"),
        "reported": reported,
        "matches_reported": None if reported is None else close_enough(json_safe(reported), safe_metrics),
    })


def model_from_checkpoint(path: str) -> tuple[dict[str, Any], torch.nn.Module]:
    """The checkpoint at ``path`` (read safely) and its model, rebuilt from the stored config with its weights."""
    ckpt = load_checkpoint(path)
    model = rebuild_model(ckpt["model"], path)
    load_weights(model, ckpt["state_dict"], path)
    return ckpt, model


def check_feature_dims(ckpt: dict[str, Any], ds, name: str) -> None:
    """Raise :class:`CheckpointError` when ``ds`` has other feature dims than the checkpoint's model takes."""
    dims = tuple(ckpt["model"]["feature_dims"])
    if tuple(ds.feature_dims) != dims:
        raise CheckpointError(
            f"{name}: the model was trained on feature dims {dims} (text, audio, vision) but {ds.source} has "
            f"{tuple(ds.feature_dims)}; give data of the kind it was trained on ({ckpt['data']['profile']}) with --data."
        )


def _reported(ckpt: dict[str, Any], split: str) -> dict[str, float] | None:
    """The metrics the run recorded for ``split`` with these weights, if any."""
    if ckpt.get("kind") != "best":
        return None
    if split == "test":
        return ckpt.get("test_metrics")
    if split == "valid":
        return ckpt.get("valid_metrics")
    return None


def close_enough(a: dict[str, float | None], b: dict[str, float | None], tol: float = 0.0) -> bool:
    """Whether two metric dicts agree key by key within ``tol`` (``None``/NaN equal each other)."""
    if set(a) != set(b):
        return False
    for key in a:
        x, y = a[key], b[key]
        x_missing = x is None or (isinstance(x, float) and math.isnan(x))
        y_missing = y is None or (isinstance(y, float) and math.isnan(y))
        if x_missing or y_missing:
            if x_missing != y_missing:
                return False
        elif abs(x - y) > tol:
            return False
    return True


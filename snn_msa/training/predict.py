"""Predictions of a trained model on a feature file, one row per sample (``snn-msa predict``).

A row holds the sample's ``split`` and ``id``, the prediction ``M``, every other
head of the model (``T``, ``A``, ``V``, ``TAV`` for SGMT), the labels the file
has (``label_M``, and ``label_T``, ``label_A``, ``label_V`` with per-modality
labels; none for a file without labels) and ``firing_rate``: the sample's
spikes over its valid neuron-steps across all spiking layers
(``ModelOutput.sample_firing_rate``; empty for a non-spiking model).

Every sample's numbers depend on that sample alone (the spike-generated
attention's scale2 is per sample), so they do not change with the batch size.

>>> rows = [{"split": "test", "id": "a", "M": 0.5, "label_M": None, "firing_rate": 0.01}]
>>> print(format_rows(rows, "csv"), end="")
split,id,M,label_M,firing_rate
test,a,0.5,,0.01
>>> print(format_rows(rows, "jsonl"), end="")
{"split": "test", "id": "a", "M": 0.5, "label_M": null, "firing_rate": 0.01}
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import torch

from ..atomic import write_atomic
from .data_source import load_eval_data
from .errors import TrainingError
from .evaluate import check_feature_dims, model_from_checkpoint
from .loop import to_device
from .settings import resolve_device, use_threads
from ..data.validate import SPLITS

SPLIT_CHOICES = SPLITS + ("all",)
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def output_format(path: str | os.PathLike, chosen: str | None = None) -> str:
    """``chosen``, else the format the file name says (``.csv``, ``.jsonl``/``.ndjson``).

    >>> output_format("p.csv"), output_format("p.JSONL"), output_format("p.txt", "csv")
    ('csv', 'jsonl', 'csv')
    """
    if chosen is not None:
        if chosen not in FORMATS.values():
            raise TrainingError(f"format must be csv or jsonl, got {chosen!r}.")
        return chosen
    found = FORMATS.get(Path(path).suffix.lower())
    if found is None:
        raise TrainingError(f"cannot tell the output format from {Path(path).name!r}: name it .csv or .jsonl, "
                            "or pass --format csv|jsonl.")
    return found


@torch.inference_mode()
def predict_split(model: torch.nn.Module, split, batch_size: int, device: torch.device) -> list[dict[str, Any]]:
    """One row per sample of ``split`` (an ``MSASplit``), in the split's order."""
    model.eval()
    rows = []
    for batch in split.loader(batch_size):
        inputs, labels = to_device(batch, device)
        output = model(**inputs)
        heads = ["M"] + [h for h in output.predictions if h != "M"]
        values = {h: output.predictions[h].detach().float().cpu().reshape(-1).tolist() for h in heads}
        rate = getattr(output, "sample_firing_rate", None)
        rates = None if rate is None else rate.detach().double().cpu().reshape(-1).tolist()
        label_values = {k: v.detach().float().cpu().reshape(-1).tolist() for k, v in labels.items()}
        for i, sample_id in enumerate(batch["ids"]):
            row: dict[str, Any] = {"split": split.name, "id": sample_id}
            row.update({h: values[h][i] for h in heads})
            row.update({f"label_{k}": v[i] for k, v in label_values.items()})
            row["firing_rate"] = None if rates is None else rates[i]
            rows.append(row)
    return rows


def predict_checkpoint(
    path: str | os.PathLike,
    data: str | os.PathLike | None = None,
    split: str = "test",
    *,
    batch_size: int | None = None,
    device: str = "auto",
    threads: int | None = None,
    allow_nonfinite: bool = False,
) -> dict[str, Any]:
    """Predictions of the checkpoint at ``path`` for every sample of ``split`` (or ``"all"`` splits).

    Args:
        path: a ``best.pt`` (or ``last.pt``) written by ``snn-msa train``.
        data: a feature file (pickle or HDF5; labels optional); ``None``: the data the run trained on.
        split: ``train``, ``valid``, ``test`` or ``all`` (the three in that order).
        batch_size: samples per forward (default: the run's); the numbers do not depend on it.
        device: ``auto``, ``cpu`` or ``cuda``.
        threads: torch's CPU threads (default: the run's; 0 keeps torch's).
        allow_nonfinite: accept data with many non-finite cells (``snn_msa.data.nonfinite``).

    Returns:
        ``{"checkpoint", "model", "data", "synthetic", "splits", "batch_size", "columns", "rows"}``.
    """
    if split not in SPLIT_CHOICES:
        raise TrainingError(f"split must be one of {', '.join(SPLIT_CHOICES)}, got {split!r}.")
    if batch_size is not None and batch_size < 1:
        raise TrainingError(f"batch size must be at least 1, got {batch_size}.")
    name = os.fspath(path)
    ckpt, model = model_from_checkpoint(name)
    ds = load_eval_data(ckpt["data"], data, allow_nonfinite=allow_nonfinite, require_labels=False)
    try:
        check_feature_dims(ckpt, ds, name)
        torch_device = resolve_device(device)
        model.to(torch_device)
        size = int(batch_size or ckpt["recipe"]["batch_size"])
        chosen = SPLITS if split == "all" else (split,)
        before = use_threads(ckpt.get("threads", 0) if threads is None else threads)
        try:
            rows = [row for s in chosen for row in predict_split(model, ds.splits[s], size, torch_device)]
        finally:
            torch.set_num_threads(before)
    finally:
        ds.close()
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return {"checkpoint": name, "model": ckpt["model"]["name"], "data": ds.source,
            "synthetic": bool(ds.is_synthetic), "splits": list(chosen), "batch_size": size, "columns": columns,
            "rows": rows}


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_rows(rows: list[dict[str, Any]], fmt: str) -> str:
    """Rows as CSV (a header, empty cells for missing values) or JSON Lines (``null``)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    if fmt == "jsonl":
        return "".join(json.dumps({k: _cell(row.get(k)) for k in columns}, allow_nan=False) + "\n" for row in rows)
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if _cell(row.get(k)) is None else row[k] for k in columns})
    return stream.getvalue()


def write_predictions(rows: list[dict[str, Any]], path: str | os.PathLike, fmt: str) -> Path:
    """Write the rows to ``path`` atomically (no half-written file on any error)."""
    return write_atomic(path, format_rows(rows, fmt))

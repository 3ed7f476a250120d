r"""Z-score every feature channel with the train split's statistics: ``snn-msa data standardize``.

SGMT projects the raw feature channels (docs/data.md, "A file with other
statistics, and raw feature scales"): where channels differ in scale by orders
of magnitude, a few large ones drown the rest before the first LayerNorm. This
writes a copy of a feature file in which every channel :math:`c` of every
modality is

.. math:: x' = (x - \mu_c) / \sigma_c

with :math:`\mu_c, \sigma_c` the mean and standard deviation of the channel's
finite cells at the valid positions of the train split (a channel constant
there is only centred: :math:`\sigma_c` is taken as 1). Padding stays 0 and
non-finite cells stay as they are (loading sets them to 0). Everything else in
the file is copied unchanged. The statistics go to a JSON file beside the
output, so that files to predict on get the same transform (``--stats``).

>>> import numpy as np
>>> x = np.array([[[1.0, 5.0], [3.0, 5.0], [0.0, 0.0]]], dtype=np.float32)  # one sample, 2 valid frames
>>> mean, std = channel_statistics(x, valid_mask(x, np.array([2])))
>>> mean.tolist(), std.tolist()
([2.0, 5.0], [1.0, 1.0])
>>> apply_statistics(x, np.array([2]), mean, std)[0].tolist()
[[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_atomic
from .dataset import load_dataset
from .errors import DataError
from .files import detect_format, format_from_suffix
from .hdf5_store import read_store, write_store
from .safe_pickle import restricted_load
from .synthetic import write_pickle
from .validate import SPLITS

MODALITIES = ("text", "audio", "vision")
CONSTANT = 1e-8  # a channel whose std is below this is only centred
STATS_FORMAT = "snn-msa-standardization-1"


def valid_mask(features: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """``[N, T]`` True at each sample's valid frames (``lengths`` None: every frame)."""
    n, t = features.shape[:2]
    if lengths is None:
        return np.ones((n, t), dtype=bool)
    return np.arange(t)[None, :] < np.asarray(lengths)[:, None]


def channel_statistics(features: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (float64) of the finite cells of ``features[valid]``; std 1 for a constant channel."""
    cells = np.asarray(features[valid], dtype=np.float64)
    finite = np.isfinite(cells)
    count = np.maximum(finite.sum(axis=0), 1)
    mean = np.where(finite, cells, 0.0).sum(axis=0) / count
    var = (np.where(finite, cells - mean, 0.0) ** 2).sum(axis=0) / count
    std = np.sqrt(var)
    return mean, np.where(std < CONSTANT, 1.0, std)


def apply_statistics(features: np.ndarray, lengths: np.ndarray | None, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(features - mean) / std`` at valid frames, 0 at padding, in the features' dtype."""
    if features.shape[-1] != mean.shape[0]:
        raise DataError(f"the statistics are for {mean.shape[0]} channels but the features have {features.shape[-1]}; "
                        "use statistics computed on a file with the same features.")
    keep = valid_mask(features, lengths)[:, :, None]
    out = np.where(keep, (features.astype(np.float64) - mean) / std, 0.0)
    return out.astype(features.dtype)


def _read(path: Path) -> dict:
    kind = detect_format(path)
    return restricted_load(str(path)) if kind == "pickle" else read_store(path)


def standardize_file(src: str | os.PathLike, dst: str | os.PathLike, *, stats: str | os.PathLike | None = None,
                     profile: str | None = None) -> dict[str, Any]:
    """Write ``src`` z-scored to ``dst`` (.pkl or .h5) and the statistics to ``dst + '.stats.json'``.

    Args:
        stats: a statistics file from an earlier run to apply instead of
            computing them from ``src``'s train split (for files to predict on).
        profile: the data set profile, if the feature dims do not tell it.

    Returns:
        The statistics written (``mean`` and ``std`` per modality, ``source``).

    Raises:
        DataError: unreadable input, a bad output name, or statistics that do
            not fit the features. ``dst`` is written through a temporary file, so
            a failure leaves an existing ``dst`` as it was.
    """
    src, dst = Path(src), Path(dst)
    kind = format_from_suffix(dst)
    if kind is None:
        raise DataError(f"cannot tell the output format from {dst.name!r}: name it .pkl (MMSA pickle) or .h5 (HDF5 store).")
    dataset = load_dataset(str(src), profile, allow_nonfinite=True)  # the lengths, read as training reads them
    data = _read(src)
    if stats is None:
        train = dataset.splits["train"]
        table = {m: channel_statistics(np.asarray(data["train"][m]), valid_mask(np.asarray(data["train"][m]),
                                                                                    train.lengths(m)))
                 for m in MODALITIES}
        record = {"format": STATS_FORMAT, "source": str(src),
                  **{m: {"mean": table[m][0].tolist(), "std": table[m][1].tolist()} for m in MODALITIES}}
    else:
        record = read_statistics(stats)
        table = {m: (np.asarray(record[m]["mean"]), np.asarray(record[m]["std"])) for m in MODALITIES}
    for split in SPLITS:
        for m in MODALITIES:
            data[split][m] = apply_statistics(np.asarray(data[split][m]), dataset.splits[split].lengths(m), *table[m])
    dataset.close()
    if kind == "hdf5":
        write_store(data, dst, source=str(src))
    else:
        write_pickle(data, dst)
    write_atomic(str(dst) + ".stats.json", json.dumps(record, indent=1) + "\n")
    return record


def read_statistics(path: str | os.PathLike) -> dict[str, Any]:
    """A statistics file written by :func:`standardize_file`, checked."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read the statistics file {path}: {error}") from None
    if not isinstance(record, dict) or record.get("format") != STATS_FORMAT or not all(
            isinstance(record.get(m), dict) and {"mean", "std"} <= set(record[m]) for m in MODALITIES):
        raise DataError(f"{path} is not a statistics file of 'snn-msa data standardize' (its <OUT>.stats.json).")
    return record

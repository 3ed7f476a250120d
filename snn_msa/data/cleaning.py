"""Non-finite feature values: counted, then set to 0 as MMSA does.

MMSA's loader sets ``audio == -inf`` to 0 (log energies of silent frames); real
files occasionally hold NaN too. Here every non-finite cell of ``text``,
``audio`` and ``vision`` becomes 0, and the number of cells of each kind is
kept so that it is reported, never hidden. Counting can be restricted to the
valid positions of each sample (its length); :mod:`snn_msa.data.nonfinite`
judges whether a file holds too many.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FEATURE_KEYS = ("text", "audio", "vision")
KINDS = ("-inf", "+inf", "nan")

# Rows read at once when counting through an HDF5 dataset: bounded memory.
_SCAN_BYTES = 64 * 2**20


def _count_cells(values: np.ndarray) -> dict[str, int]:
    bad = ~np.isfinite(values)
    if not bad.any():
        return dict.fromkeys(KINDS, 0)
    cells = values[bad]
    return {"-inf": int(np.isneginf(cells).sum()), "+inf": int(np.isposinf(cells).sum()), "nan": int(np.isnan(cells).sum())}


def add_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    """Sum two ``{"-inf", "+inf", "nan"}`` count dicts."""
    return {k: a.get(k, 0) + b.get(k, 0) for k in KINDS}


def count_nonfinite(values: Any, lengths: np.ndarray | None = None) -> dict[str, int]:
    """Cells of each non-finite kind in an array or an ``h5py.Dataset`` ``[N, L, ...]`` (read in slabs).

    With ``lengths`` (``[N]``, valid positions per sample), only the first
    ``lengths[i]`` positions of sample ``i`` along axis 1 count: padding is not data.

    >>> count_nonfinite(np.array([1.0, -np.inf, np.nan, np.inf, -np.inf]))
    {'-inf': 2, '+inf': 1, 'nan': 1}
    >>> count_nonfinite(np.array([[[np.nan], [np.nan]], [[-np.inf], [np.nan]]]), lengths=np.array([1, 0]))
    {'-inf': 0, '+inf': 0, 'nan': 1}
    """
    shape = values.shape
    if not shape or shape[0] == 0:
        return _count_cells(np.asarray(values[()]))
    row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * values.dtype.itemsize)
    step = max(1, _SCAN_BYTES // row_bytes)
    total = dict.fromkeys(KINDS, 0)
    for start in range(0, shape[0], step):
        block = np.asarray(values[start : start + step])
        if lengths is not None:
            valid = np.arange(shape[1])[None, :] < np.asarray(lengths[start : start + step])[:, None]
            block = block[valid]  # [valid positions, features...]
        total = add_counts(total, _count_cells(block))
    return total


def valid_cells(shape: tuple[int, ...], lengths: np.ndarray | None = None) -> int:
    """Cells at valid positions of an ``[N, L, D...]`` array: ``sum_i min(len_i, L) * D`` (``N * L * D`` without lengths).

    >>> valid_cells((2, 4, 3), np.array([1, 9])), valid_cells((2, 4, 3))
    (15, 24)
    """
    per_position = int(np.prod(shape[2:], dtype=np.int64))
    if lengths is None:
        return int(shape[0]) * int(shape[1]) * per_position
    return int(np.minimum(np.asarray(lengths, dtype=np.int64), shape[1]).sum()) * per_position


def clean_features(values: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """``values`` as float32 with non-finite cells set to 0, and the count of each kind.

    Works in place when ``values`` is already a writable float32 array.

    >>> clean_features(np.array([[1.0, -np.inf], [np.nan, 2.0]]))
    (array([[1., 0.],
           [0., 2.]], dtype=float32), {'-inf': 1, '+inf': 0, 'nan': 1})
    """
    out = np.asarray(values)
    if out.dtype != np.float32 or not out.flags.writeable:
        out = out.astype(np.float32)
    bad = ~np.isfinite(out)
    if not bad.any():
        return out, dict.fromkeys(KINDS, 0)
    cells = out[bad]
    counts = {"-inf": int(np.isneginf(cells).sum()), "+inf": int(np.isposinf(cells).sum()), "nan": int(np.isnan(cells).sum())}
    out[bad] = 0.0
    return out, counts

"""How many non-finite feature cells a file may hold before it is not usable.

Per split and modality, over the valid positions only (each sample's first
``length`` frames; padding is not data):

.. math::

    \\text{share} = \\frac{\\#\\{\\text{non-finite cells at valid positions}\\}}
                         {\\sum_i \\min(\\ell_i, L)\\, D}

- ``share > MAX_NONFINITE_SHARE`` (1 %): an **error**. Loading would set those
  cells to 0 and the model would learn from zeros where the features were
  missing. ``allow=True`` (``--allow-nonfinite``) turns it into a warning for a
  user who accepts that knowingly.
- ``0 < share <= MAX_NONFINITE_SHARE``: a **warning**; the cells are set to 0,
  as MMSA sets ``audio == -inf`` to 0 (real SIMS and MOSEI audio holds a few).

>>> import numpy as np
>>> audio = np.zeros((2, 100, 3)); audio[0, 0, 0] = -np.inf
>>> count = count_modality(audio, np.array([100, 50]))
>>> count.total, count.valid_cells, percent(count.share)
(1, 450, '0.222%')
>>> [p.severity for p in judge({"train": {"audio": count}})]
['warning']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import hashlib

import numpy as np

from .cleaning import KINDS, count_nonfinite, valid_cells
from .hdf5_store import stored_nonfinite
from .validate import LENGTH_KEYS, MODALITIES, Problem

#: The largest share of a split's valid cells of one modality that may be non-finite without an error.
MAX_NONFINITE_SHARE = 0.01
ALLOW_FLAG = "--allow-nonfinite"
#: HDF5 attributes of the counts at valid positions, recorded at conversion with the lengths they used.
VALID_ATTRS = {kind: f"nonfinite_valid_{name}" for kind, name in (("-inf", "neg_inf"), ("+inf", "pos_inf"), ("nan", "nan"))}
VALID_LENGTHS_ATTR = "nonfinite_valid_lengths"


def lengths_digest(lengths: np.ndarray | None) -> str:
    """What identifies the valid positions a stored count was made on (``"all"`` without lengths)."""
    if lengths is None:
        return "all"
    return hashlib.sha256(np.ascontiguousarray(lengths, dtype=np.int64).tobytes()).hexdigest()[:16]


def _stored_valid(values: Any, lengths: np.ndarray | None) -> dict[str, int] | None:
    attrs = values.attrs
    if attrs.get(VALID_LENGTHS_ATTR) != lengths_digest(lengths) or not all(a in attrs for a in VALID_ATTRS.values()):
        return None
    return {kind: int(attrs[attr]) for kind, attr in VALID_ATTRS.items()}


@dataclass(frozen=True)
class NonfiniteCount:
    """Non-finite cells of one modality of one split at its valid positions.

    Attributes:
        kinds: cells of each kind, ``{"-inf": n, "+inf": n, "nan": n}``.
        valid_cells: cells at valid positions (``sum_i min(len_i, L) * D``).
    """

    kinds: dict[str, int]
    valid_cells: int

    @property
    def total(self) -> int:
        """Non-finite cells at valid positions."""
        return sum(self.kinds.values())

    @property
    def share(self) -> float:
        """``total / valid_cells`` (0 when there are no valid cells)."""
        return self.total / self.valid_cells if self.valid_cells else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: the kinds, ``total``, ``valid_cells`` and ``share``."""
        return {**self.kinds, "total": self.total, "valid_cells": self.valid_cells, "share": self.share}

    @property
    def kinds_text(self) -> str:
        """``"2 -inf, 1 nan"``: the kinds present."""
        return ", ".join(f"{n} {k}" for k, n in self.kinds.items() if n)

    def describe(self) -> str:
        """``"12 (0.00312%: 12 -inf)"``."""
        return f"{self.total} ({percent(self.share)}: {self.kinds_text})"


def percent(share: float) -> str:
    """A share as a percentage with three significant digits.

    >>> percent(0.01), percent(4.37e-06), percent(1.0)
    ('1%', '0.000437%', '100%')
    """
    return f"{share * 100:.3g}%"


def count_modality(values: Any, lengths: np.ndarray | None) -> NonfiniteCount:
    """Count the non-finite cells of one ``[N, L, D]`` feature array (or ``h5py.Dataset``) at its valid positions.

    An HDF5 store records at conversion the count over every cell and the count
    at valid positions (with the lengths it used); when either answers, the
    dataset is not read again, so opening a store stays lazy.
    """
    cells = valid_cells(tuple(values.shape), lengths)
    if hasattr(values, "attrs"):
        stored = stored_nonfinite(values)
        if stored is not None and not sum(stored.values()):
            return NonfiniteCount(dict.fromkeys(KINDS, 0), cells)
        stored = _stored_valid(values, lengths)
        if stored is not None:
            return NonfiniteCount(stored, cells)
    return NonfiniteCount(count_nonfinite(values, lengths), cells)


def record_valid_counts(top: Any, file: str, text_key: str = "text") -> None:
    """Write into an HDF5 store being converted the non-finite counts at valid positions of every feature array.

    A store whose structure does not pass inspection records nothing (loading
    it reports the problem and counts by reading).
    """
    from .validate import inspect_splits

    found = inspect_splits(top, file, text_key=text_key, require_labels=False)
    for split, per_modality in count_splits(top, found.splits, text_key).items():
        for modality, count in per_modality.items():
            attrs = top[split][text_key if modality == "text" else modality].attrs
            attrs[VALID_LENGTHS_ATTR] = lengths_digest(found.splits[split].lengths.get(modality))
            for kind, attr in VALID_ATTRS.items():
                attrs[attr] = count.kinds[kind]


def judge(counts: dict[str, dict[str, NonfiniteCount]], allow: bool = False, text_key: str = "text") -> list[Problem]:
    """The problems the counts make: an error above :data:`MAX_NONFINITE_SHARE` (a warning with ``allow``), else a warning."""
    problems = []
    for split, per_modality in counts.items():
        for modality, count in per_modality.items():
            if not count.total:
                continue
            key = text_key if modality == "text" else modality
            where = (f"{count.total:,} of its {count.valid_cells:,} cells at valid positions ({percent(count.share)}) "
                     f"are not finite ({count.kinds_text})")
            if count.share > MAX_NONFINITE_SHARE and not allow:
                problems.append(Problem(
                    "error",
                    f"{where}, more than the {percent(MAX_NONFINITE_SHARE)} snn-msa accepts: they would be set to 0 and the "
                    f"model would learn from zeros. Fix the features, or pass {ALLOW_FLAG} to use them knowingly.",
                    split, key,
                ))
            else:
                accepted = (f" (above {percent(MAX_NONFINITE_SHARE)}, accepted with {ALLOW_FLAG})"
                            if count.share > MAX_NONFINITE_SHARE else "")
                problems.append(Problem("warning", f"{where}{accepted}; loading sets them to 0.", split, key))
    return problems


def count_splits(top: Any, splits: dict[str, Any], text_key: str = "text") -> dict[str, dict[str, NonfiniteCount]]:
    """Counts per split and modality of the splits :func:`~snn_msa.data.validate.inspect_splits` read.

    Args:
        top: the feature dict (or HDF5 file) the splits come from.
        splits: ``{name: SplitInfo}``. A modality is left out when its array is
            not a float ``[N, L, D]`` array, or its lengths are stored but
            unusable (the inspection reports those).
        text_key: the key of the text features.
    """
    counts: dict[str, dict[str, NonfiniteCount]] = {}
    length_keys = {"text": "text_bert", **LENGTH_KEYS}
    for name, info in splits.items():
        per_modality = {}
        for modality in MODALITIES:
            key = text_key if modality == "text" else modality
            if key not in top[name]:
                continue
            values, lengths = top[name][key], info.lengths.get(modality)
            if len(values.shape) != 3 or np.dtype(values.dtype).kind != "f":
                continue
            if lengths is None and length_keys[modality] in top[name]:
                continue  # stored but unusable: its own error says so
            if lengths is not None and len(lengths) != values.shape[0]:
                continue  # sample counts disagree: their own error says so
            per_modality[modality] = count_modality(values, lengths)
        counts[name] = per_modality
    return counts


def summary(counts: dict[str, dict[str, NonfiniteCount]]) -> str:
    """One line for a run's header: what was cleaned, per split and modality.

    >>> summary({"train": {"audio": NonfiniteCount({"-inf": 2, "+inf": 0, "nan": 0}, 1000)}})
    'non-finite feature cells set to 0 (at valid positions): train audio 2 (0.2%: 2 -inf)'
    >>> summary({})
    'non-finite feature cells: none'
    """
    parts = [f"{split} {modality} {count.describe()}"
             for split, per_modality in counts.items() for modality, count in per_modality.items() if count.total]
    if not parts:
        return "non-finite feature cells: none"
    return "non-finite feature cells set to 0 (at valid positions): " + "; ".join(parts)


def as_record(counts: dict[str, dict[str, NonfiniteCount]], allowed: bool) -> dict[str, Any]:
    """What results.json and checkpoints record: the limit, whether more was allowed, and every count."""
    return {
        "max_share": MAX_NONFINITE_SHARE,
        "allowed": bool(allowed),
        "splits": {split: {m: c.as_dict() for m, c in per.items()} for split, per in counts.items()},
    }

r"""MSA evaluation metrics with MMSA's key names and definitions.

Two metric families, chosen by the data set (see :func:`metric_family`):

- ``"sims"`` (CH-SIMS, CH-SIMS v2), MMSA's ``__eval_sims_regression``:
  ``Mult_acc_2``, ``Mult_acc_3``, ``Mult_acc_5``, ``F1_score``, ``MAE``, ``Corr``.
- ``"mosi"`` (CMU-MOSI, CMU-MOSEI), MMSA's ``__eval_mosei_regression``:
  ``Has0_acc_2``, ``Has0_F1_score``, ``Non0_acc_2``, ``Non0_F1_score``,
  ``Mult_acc_5``, ``Mult_acc_7``, ``MAE``, ``Corr``.

Every value is rounded to 4 decimals as MMSA does (``decimals=None`` keeps the
unrounded value). Cases MMSA crashes on or answers with garbage (no non-zero
label, constant predictions or labels) give ``nan`` and a note instead; see
:func:`msa_metrics_with_notes`. ``docs/metrics.md`` has the full write-up.

>>> msa_metrics([0.5, -0.3, 0.0, 0.9], [0.6, -0.2, 0.2, 0.8], "sims")["Mult_acc_5"]
0.75
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .profiles import get_profile

__all__ = [
    "HEADLINE",
    "METRIC_KEYS",
    "UndefinedMetricWarning",
    "lower_is_better",
    "metric_family",
    "msa_metrics",
    "msa_metrics_with_notes",
    "primary_metric",
    "weighted_f1",
]

METRIC_KEYS: dict[str, list[str]] = {
    "sims": ["Mult_acc_2", "Mult_acc_3", "Mult_acc_5", "F1_score", "MAE", "Corr"],
    "mosi": ["Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Mult_acc_5", "Mult_acc_7", "MAE", "Corr"],
}
"""The keys :func:`msa_metrics` returns for each family, in MMSA's order."""

HEADLINE: dict[str, list[str]] = {
    "sims": ["Mult_acc_2", "Mult_acc_3", "Mult_acc_5", "F1_score", "MAE", "Corr"],
    "mosi": ["Non0_acc_2", "Non0_F1_score", "Mult_acc_7", "MAE", "Corr"],
}
"""The keys a summary reports: the paper's Acc-2 on MOSI/MOSEI is the Non0 one."""

_PRIMARY = {"sims": "Mult_acc_5", "mosi": "Mult_acc_7"}

# MMSA's class edges for SIMS: class i holds edges[i] < x <= edges[i + 1].
_SIMS_EDGES = {
    2: (-1.01, 0.0, 1.01),
    3: (-1.01, -0.1, 0.1, 1.01),
    5: (-1.01, -0.7, -0.1, 0.1, 0.7, 1.01),
}

_CORR_UNDEFINED = "Corr is undefined when predictions or labels are constant; reported as nan."
_NON0_UNDEFINED = "Non0_acc_2 and Non0_F1_score are undefined: every label is exactly 0; reported as nan."


class UndefinedMetricWarning(UserWarning):
    """A metric was undefined for this input and is reported as ``nan``."""


def metric_family(profile: str) -> str:
    """The metric family (``"sims"`` or ``"mosi"``) of a profile or family name.

    >>> metric_family("mosei"), metric_family("SIMS-v2"), metric_family("mosi")
    ('mosi', 'sims', 'mosi')
    """
    # The family names are themselves profile names, so one lookup serves both.
    return get_profile(profile).metric_family


def primary_metric(profile: str) -> str:
    """The key a single-number summary uses: the paper's primary metric.

    Acc-5 (``Mult_acc_5``) on SIMS, Acc-7 (``Mult_acc_7``) on MOSI/MOSEI.

    >>> primary_metric("sims"), primary_metric("mosei")
    ('Mult_acc_5', 'Mult_acc_7')
    """
    return _PRIMARY[metric_family(profile)]


def lower_is_better(key: str) -> bool:
    """Whether a smaller value of metric ``key`` is better (only ``MAE``).

    >>> lower_is_better("MAE"), lower_is_better("Corr")
    (True, False)
    """
    known = {k for keys in METRIC_KEYS.values() for k in keys}
    if key not in known:
        raise ValueError(f"unknown metric key {key!r}; known keys: {', '.join(sorted(known))}.")
    return key == "MAE"


def weighted_f1(y_true: Any, y_pred: Any) -> float:
    r"""F1 averaged over classes, weighted by true support, as scikit-learn's
    ``f1_score(y_true, y_pred, average="weighted")``.

    Over the classes :math:`c` present in ``y_true`` or ``y_pred``:

    .. math::
        F1 = \sum_c \frac{n_c}{N}\,\frac{2\,TP_c}{2\,TP_c + FP_c + FN_c},

    with :math:`n_c` the number of true labels of class :math:`c`. This equals
    :math:`2PR/(P+R)` with a 0/0 precision or recall counted as 0, which is
    scikit-learn's default (``zero_division="warn"``) value. A class only
    predicted has weight 0 but, as in scikit-learn, is counted as a class.

    >>> weighted_f1([0, 0, 1, 1], [0, 1, 1, 1])  # 0.5 * 2/3 + 0.5 * 4/5
    0.7333333333333334
    >>> weighted_f1([1, 1], [0, 0])
    0.0
    """
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if y_true.size == 0 or y_true.shape != y_pred.shape:
        raise ValueError(f"weighted_f1 needs two non-empty arrays of one length, got {y_true.size} and {y_pred.size}.")
    total = 0.0
    for c in np.union1d(y_true, y_pred):
        is_true, is_pred = y_true == c, y_pred == c
        tp = np.count_nonzero(is_true & is_pred)
        fp = np.count_nonzero(~is_true & is_pred)
        fn = np.count_nonzero(is_true & ~is_pred)
        # 2tp + fp + fn > 0 because c occurs in y_true or y_pred.
        total += np.count_nonzero(is_true) * (2 * tp / (2 * tp + fp + fn))
    return float(total / y_true.size)


def msa_metrics(preds: Any, labels: Any, profile: str, *, decimals: int | None = 4) -> dict[str, float]:
    r"""MMSA's regression metrics of ``preds`` against ``labels``.

    Args:
        preds: predictions, array-like or tensor of shape ``[N]`` or ``[N, 1]``.
        labels: regression labels, same length.
        profile: ``sims``, ``simsv2``, ``mosi``, ``mosei`` or a family name
            (``"sims"``/``"mosi"``).
        decimals: round every value to this many decimals (MMSA: 4); ``None``
            keeps full precision.

    Returns:
        ``{key: float}`` with the keys ``METRIC_KEYS[metric_family(profile)]``.

    Raises:
        ValueError: empty input, lengths that differ, a shape other than
            ``[N]``/``[N, 1]``, or a non-finite value.

    An undefined metric (see :func:`msa_metrics_with_notes`) is ``nan`` and is
    announced with an :class:`UndefinedMetricWarning`.

    **SIMS family.** :math:`p, y` are clipped to :math:`[-1, 1]`, then binned:
    class :math:`i` holds :math:`e_i < x \le e_{i+1}` with edges
    :math:`e = (-1.01, 0, 1.01)` for Acc-2, :math:`(-1.01, -0.1, 0.1, 1.01)` for
    Acc-3 and :math:`(-1.01, -0.7, -0.1, 0.1, 0.7, 1.01)` for Acc-5.
    ``Mult_acc_k`` is the share of samples whose predicted class equals the true
    class; ``F1_score`` is :func:`weighted_f1` of the 2-class bins;
    :math:`\mathrm{MAE} = \frac1N\sum|p_n - y_n|` and ``Corr`` (Pearson) use the
    clipped values.

    **MOSI family.** ``Mult_acc_7`` compares :math:`\mathrm{round}(\mathrm{clip}(x, -3, 3))`
    and ``Mult_acc_5`` :math:`\mathrm{round}(\mathrm{clip}(x, -2, 2))`, rounding half to even
    as ``np.round`` does. ``Has0``: negative vs non-negative (:math:`x \ge 0`);
    ``Non0``: samples whose label is exactly 0 are dropped, then negative vs
    positive (:math:`x > 0`); ``*_acc_2`` is accuracy, ``*_F1_score`` is
    :func:`weighted_f1`. ``MAE`` and ``Corr`` use unclipped values.

    Bin comparisons run in each array's own float type (float32 or float64) with
    the edges cast to it, as MMSA's float32 arrays against Python floats do: a
    float32 ``0.1`` falls in the bin ``(-0.1, 0.1]``.

    >>> m = msa_metrics([0.5, -0.3, 0.0, 0.9], [0.6, -0.2, 0.2, 0.8], "sims")
    >>> m["Mult_acc_2"], m["Mult_acc_3"], m["F1_score"], m["MAE"]
    (0.75, 0.75, 0.7667, 0.125)
    >>> m = msa_metrics([[2.4], [-0.6], [0.3], [1.5]], [[2.6], [-1.0], [0.0], [-0.2]], "mosei")
    >>> m["Non0_acc_2"], m["Has0_acc_2"], m["Mult_acc_7"], m["MAE"]
    (0.6667, 0.75, 0.5, 0.65)
    """
    values, notes = msa_metrics_with_notes(preds, labels, profile, decimals=decimals)
    for note in notes:
        warnings.warn(note, UndefinedMetricWarning, stacklevel=2)
    return values


def msa_metrics_with_notes(
    preds: Any, labels: Any, profile: str, *, decimals: int | None = 4
) -> tuple[dict[str, float], list[str]]:
    """:func:`msa_metrics` without warnings: the values and a list of notes.

    A note is given, and the metric is ``nan``, when

    - predictions or labels are constant (after clipping, on SIMS): ``Corr``;
    - every label is exactly 0 (MOSI family): ``Non0_acc_2``, ``Non0_F1_score``.

    >>> values, notes = msa_metrics_with_notes([0.2, 0.2, 0.2], [0.4, -0.6, 0.0], "sims")
    >>> values["Corr"], notes
    (nan, ['Corr is undefined when predictions or labels are constant; reported as nan.'])
    """
    family = metric_family(profile)
    p, y = _as_vector(preds, "preds"), _as_vector(labels, "labels")
    if p.size != y.size:
        raise ValueError(f"preds and labels differ in length: {p.size} predictions, {y.size} labels.")
    notes: list[str] = []
    if family == "sims":
        values = _sims_metrics(p, y, notes)
    else:
        values = _mosi_metrics(p, y, notes)
    if decimals is not None:
        values = {k: float(np.round(v, decimals)) for k, v in values.items()}
    return values, notes


def _as_vector(x: Any, name: str) -> np.ndarray:
    """A finite float32/float64 vector from an array-like or tensor of shape [N] or [N, 1]."""
    if type(x).__module__.split(".")[0] == "torch":
        import torch

        x = x.detach().cpu()
        if x.dtype not in (torch.float32, torch.float64):
            # bfloat16/float16 have no exact numpy twin; widen them to float32.
            x = x.to(torch.float32 if x.is_floating_point() else torch.float64)
        x = x.numpy()
    try:
        a = np.asarray(x)
        if a.dtype == np.float16:
            a = a.astype(np.float32)
        elif a.dtype not in (np.float32, np.float64):
            a = a.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numbers, got {type(x).__name__}: {err}") from None
    if not (a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1)):
        raise ValueError(f"{name} must have shape [N] or [N, 1], got {list(a.shape)}.")
    a = a.reshape(-1)
    if a.size == 0:
        raise ValueError(f"{name} is empty; metrics need at least one sample.")
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        raise ValueError(f"{name} has {bad.size} non-finite value(s) (nan or inf), first at index {bad[0]}.")
    return a


def _sims_bins(x: np.ndarray, n_classes: int) -> np.ndarray:
    edges = np.asarray(_SIMS_EDGES[n_classes], dtype=x.dtype)
    # side="left" gives the i with edges[i-1] < x <= edges[i]: MMSA's half-open bins.
    return np.searchsorted(edges, x, side="left") - 1


def _accuracy(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


def _pearson(p: np.ndarray, y: np.ndarray, notes: list[str]) -> float:
    # np.corrcoef of a constant vector is nan with a RuntimeWarning, or, when the
    # mean is inexact, a meaningless value; say what it is instead.
    if np.ptp(p) == 0 or np.ptp(y) == 0:
        notes.append(_CORR_UNDEFINED)
        return float("nan")
    with np.errstate(all="ignore"):
        r = float(np.corrcoef(p.astype(np.float64), y.astype(np.float64))[0, 1])
    if not np.isfinite(r):
        notes.append("Corr overflowed for these magnitudes; reported as nan.")
        return float("nan")
    return r


def _mae(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.abs(p.astype(np.float64) - y.astype(np.float64))))


def _sims_metrics(p: np.ndarray, y: np.ndarray, notes: list[str]) -> dict[str, float]:
    p, y = np.clip(p, -1.0, 1.0), np.clip(y, -1.0, 1.0)
    p2, y2 = _sims_bins(p, 2), _sims_bins(y, 2)
    return {
        "Mult_acc_2": _accuracy(p2, y2),
        "Mult_acc_3": _accuracy(_sims_bins(p, 3), _sims_bins(y, 3)),
        "Mult_acc_5": _accuracy(_sims_bins(p, 5), _sims_bins(y, 5)),
        "F1_score": weighted_f1(y2, p2),
        "MAE": _mae(p, y),
        "Corr": _pearson(p, y, notes),
    }


def _mosi_metrics(p: np.ndarray, y: np.ndarray, notes: list[str]) -> dict[str, float]:
    def classes(x: np.ndarray, bound: float) -> np.ndarray:
        return np.round(np.clip(x, -bound, bound))  # half to even: 2.5 -> 2

    non0 = y != 0
    if non0.any():
        p_pos, y_pos = p[non0] > 0, y[non0] > 0
        non0_acc, non0_f1 = _accuracy(p_pos, y_pos), weighted_f1(y_pos, p_pos)
    else:
        notes.append(_NON0_UNDEFINED)
        non0_acc = non0_f1 = float("nan")
    p_nonneg, y_nonneg = p >= 0, y >= 0
    return {
        "Has0_acc_2": _accuracy(p_nonneg, y_nonneg),
        "Has0_F1_score": weighted_f1(y_nonneg, p_nonneg),
        "Non0_acc_2": non0_acc,
        "Non0_F1_score": non0_f1,
        "Mult_acc_5": _accuracy(classes(p, 2.0), classes(y, 2.0)),
        "Mult_acc_7": _accuracy(classes(p, 3.0), classes(y, 3.0)),
        "MAE": _mae(p, y),
        "Corr": _pearson(p, y, notes),
    }

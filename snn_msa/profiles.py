"""Dataset profiles: what the MMSA feature files of each data set look like.

A profile gives the shapes a synthetic stand-in is built with and the label
range and metric family of the data set. Shapes of real files are always read
from the file itself; the profile only checks that they fit.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetProfile:
    """Shapes and conventions of one MSA data set (unaligned MMSA features).

    Attributes:
        name: short name used on the command line.
        title: the data set's usual name.
        feature_dims: feature dimensions (text, audio, vision).
        seq_lens: sequence lengths (text, audio, vision) of the unaligned files.
        split_sizes: samples in (train, valid, test) of the real data set.
        label_range: closed interval of the regression labels.
        modality_labels: whether the files carry ``regression_labels_T/A/V``.
        metric_family: ``"sims"`` or ``"mosi"``: which MMSA metric set applies.
    """

    name: str
    title: str
    feature_dims: tuple[int, int, int]
    seq_lens: tuple[int, int, int]
    split_sizes: tuple[int, int, int]
    label_range: tuple[float, float]
    modality_labels: bool
    metric_family: str


PROFILES: dict[str, DatasetProfile] = {
    p.name: p
    for p in (
        DatasetProfile("sims", "CH-SIMS", (768, 33, 709), (39, 400, 55), (1368, 456, 457), (-1.0, 1.0), True, "sims"),
        DatasetProfile("simsv2", "CH-SIMS v2", (768, 25, 177), (50, 925, 232), (2722, 647, 1034), (-1.0, 1.0), True, "sims"),
        DatasetProfile("mosi", "CMU-MOSI", (768, 5, 20), (50, 375, 500), (1284, 229, 686), (-3.0, 3.0), False, "mosi"),
        DatasetProfile("mosei", "CMU-MOSEI", (768, 74, 35), (50, 500, 375), (16326, 1871, 4659), (-3.0, 3.0), False, "mosi"),
    )
}


def get_profile(name: str) -> DatasetProfile:
    """The profile called ``name``; a clear error listing the known names otherwise.

    >>> get_profile("sims").feature_dims
    (768, 33, 709)
    """
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in PROFILES:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(PROFILES)}.")
    return PROFILES[key]

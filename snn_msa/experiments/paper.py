"""The paper's published numbers beside ours: taken from the zoo cards, shown only on the paper's data sets.

A card's ``paper_results`` maps a data set to the paper's numbers for that
entry (MMSA keys, fractions): CH-SIMS v2 for Tables 1 and 3, CMU-MOSEI for
Table 2. On any other data set (or another profile) nothing is shown, since
the numbers would not be comparable.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..data import MSADataset
from ..registry import get_card

# Which table of the paper each experiment's numbers come from, per data set.
PAPER_TABLES = {
    "compare": {"simsv2": "Table 1, CH-SIMS v2", "mosei": "Table 2, CMU-MOSEI"},
    "ablation": {"simsv2": "Table 3, CH-SIMS v2: its caption says MOSEI, but its T+A+V row is Table 1's"},
}


def paper_numbers(model: str, profile: str) -> dict[str, float]:
    """The paper's numbers for ``model`` on the ``profile`` data set (empty when the paper reports none).

    >>> paper_numbers("sgmt-ta", "simsv2")["Mult_acc_5"], paper_numbers("sgmt-ta", "sims")
    (0.5097, {})
    """
    return dict(get_card(model).paper_results.get(profile, {}))


def paper_source(profile: str, experiment: str = "compare") -> str:
    """Where in the paper the numbers of ``experiment`` on the ``profile`` data set come from.

    >>> paper_source("mosei")
    'Table 2, CMU-MOSEI'
    """
    return PAPER_TABLES.get(experiment, {}).get(profile, "the paper")


def paper_fields(model: str, profile: str, keys: Sequence[str]) -> dict[str, Any]:
    """A table row's paper columns: ``paper`` (:func:`paper_numbers`) and ``<key>_paper`` for each metric key."""
    paper = paper_numbers(model, profile)
    return {"paper": paper, **{f"{k}_paper": paper.get(k) for k in keys}}


def paper_line(dataset: MSADataset, experiment: str = "compare") -> str:
    """The settings line of a table that shows the paper's numbers: where they come from, and that they do
    not compare with results on synthetic data."""
    return (f"- Paper lines: the published numbers ({paper_source(dataset.profile.name, experiment)}), from the zoo "
            "cards" + ("; this data is synthetic, so they are not comparable" if dataset.is_synthetic else ""))

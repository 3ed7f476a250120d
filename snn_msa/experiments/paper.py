"""The paper's published numbers beside ours: taken from the zoo cards, shown only on the paper's data sets.

A card's ``paper_results`` maps a data set to the paper's numbers for that
entry (MMSA keys, fractions): CH-SIMS v2 for Tables 1 and 3, CMU-MOSEI for
Table 2. On any other data set (or another profile) nothing is shown, since
the numbers would not be comparable.
"""

from __future__ import annotations

from ..registry import get_card

# Which table of the paper each experiment's numbers come from, per data set.
PAPER_TABLES = {
    "compare": {"simsv2": "Table 1, CH-SIMS v2", "mosei": "Table 2, CMU-MOSEI"},
    "ablation": {"simsv2": "Table 3, CH-SIMS v2: its caption says MOSEI, but its T+A+V row is Table 1's"},
}


def paper_numbers(model: str, dataset: str) -> dict[str, float]:
    """The paper's numbers for ``model`` on ``dataset`` (empty when the paper reports none).

    >>> paper_numbers("sgmt-ta", "simsv2")["Mult_acc_5"], paper_numbers("sgmt-ta", "sims")
    (0.5097, {})
    """
    return dict(get_card(model).paper_results.get(dataset, {}))


def paper_source(dataset: str, experiment: str = "compare") -> str:
    """Where in the paper the numbers of ``experiment`` on ``dataset`` come from.

    >>> paper_source("mosei")
    'Table 2, CMU-MOSEI'
    """
    return PAPER_TABLES.get(experiment, {}).get(dataset, "the paper")

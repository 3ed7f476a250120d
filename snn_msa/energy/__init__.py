"""Energy accounting: per-layer operations and energy of a spiking model and its non-spiking twin.

- :func:`energy_report`: run both on real inputs and return the report dict
  (what ``snn-msa energy --json`` prints).
- :func:`format_summary`: totals, ratio, largest layers and assumptions for a terminal;
  :func:`format_report`: every layer as an aligned table; :func:`format_markdown`: all of it as markdown.
- :func:`plot_report`: per-layer energy of both models as a bar chart.
- :class:`LayerCounter`, :func:`count_forward`: the per-layer counts of any forward.

The accounting rules are in docs/energy.md.
"""

from .constants import E_AC_PJ, E_MAC_PJ, OTHER_OPS, energy_45nm_pj
from .counting import LayerCount, LayerCounter, count_batches, count_forward
from .format import format_markdown, format_report, format_summary
from .plot import plot_report
from .report import LAYER_KEYS, MEMORY_KEYS, REPORT_KEYS, TOTAL_KEYS, EnergyError, energy_report

__all__ = [
    "E_AC_PJ",
    "E_MAC_PJ",
    "OTHER_OPS",
    "EnergyError",
    "LAYER_KEYS",
    "LayerCount",
    "LayerCounter",
    "MEMORY_KEYS",
    "REPORT_KEYS",
    "TOTAL_KEYS",
    "count_batches",
    "count_forward",
    "energy_45nm_pj",
    "energy_report",
    "format_markdown",
    "format_report",
    "format_summary",
    "plot_report",
]

"""Energy accounting: per-layer operations and energy of any zoo model (and its twin, where it has one).

- :func:`energy_report`: run the model(s) on real inputs and return the report dict
  (what ``snn-msa energy --json`` prints).
- :func:`format_summary`: totals, ratio, largest layers and assumptions for a terminal;
  :func:`format_report`: every layer as an aligned table; :func:`format_markdown`: all of it as markdown.
- :func:`plot_report`: per-layer energy of both models as a bar chart.
- :class:`LayerCounter`, :func:`count_forward`: the per-layer counts of any forward, by
  rules keyed by module type and torch function (:mod:`.rules`), extensible with
  :func:`module_rule` / :func:`function_rule`.
- :class:`Scope`: what a model tells the counter (stage, modality, valid positions).

The accounting rules are in docs/energy.md.
"""

from .constants import E_AC_PJ, E_MAC_PJ, OTHER_OPS, energy_45nm_pj
from .counting import LayerCount, LayerCounter, count_batches, count_forward, model_inputs
from .format import format_markdown, format_report, format_summary
from .plot import plot_report
from .positions import Scope
from .report import LAYER_KEYS, MEMORY_KEYS, REPORT_KEYS, TOTAL_KEYS, UNCOUNTED_KEYS, EnergyError, energy_report
from .rules import FUNCTION_RULES, MODULE_RULES, Call, function_rule, module_rule

__all__ = [
    "E_AC_PJ",
    "E_MAC_PJ",
    "FUNCTION_RULES",
    "MODULE_RULES",
    "OTHER_OPS",
    "Call",
    "EnergyError",
    "LAYER_KEYS",
    "LayerCount",
    "LayerCounter",
    "MEMORY_KEYS",
    "REPORT_KEYS",
    "Scope",
    "TOTAL_KEYS",
    "UNCOUNTED_KEYS",
    "count_batches",
    "count_forward",
    "energy_45nm_pj",
    "energy_report",
    "format_markdown",
    "format_report",
    "format_summary",
    "function_rule",
    "model_inputs",
    "module_rule",
    "plot_report",
]

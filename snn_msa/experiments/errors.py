"""The error of the experiments layer: its message says what went wrong and what to do."""

from __future__ import annotations


class ExperimentError(Exception):
    """An expected failure of a grid, ablation or comparison (bad arguments, a folder holding other runs, ...).

    The command line prints the message as it is and exits with status 1.
    """

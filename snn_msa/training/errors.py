"""The errors of the training layer: each message says what went wrong and what to do."""

from __future__ import annotations


class TrainingError(Exception):
    """An expected failure of a training or evaluation run (bad settings, a bad checkpoint, ...).

    The command line prints the message as it is and exits with status 1.
    """


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


class CheckpointError(TrainingError):
    """A checkpoint file that is missing, damaged, not ours, or does not fit the run."""

"""Command-line options shared by several commands, each declared once as a group of click decorators.

A command takes the groups it needs (as ``tool_options`` in simonw/llm's CLI),
so the same option cannot drift between commands:

>>> import click
>>> @click.command()
... @options(RECIPE_OPTIONS)
... def fit(**kwargs):
...     pass
>>> [p.name for p in fit.params]
['epochs', 'lr', 'batch_size', 'patience', 'weight_decay', 'grad_clip']
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import click

from snn_msa.data.nonfinite import MAX_NONFINITE_SHARE
from snn_msa.profiles import PROFILES
from snn_msa.training.settings import CLI_THREADS, DEVICES

Decorator = Callable[[Callable], Callable]

#: A dataset profile, spelled as the profiles name them (case does not matter).
DATASET_CHOICE = click.Choice(list(PROFILES), case_sensitive=False)

#: (flag, keyword, type, what it overrides) for the model settings a command may change.
MODEL_OVERRIDES = (
    ("--scale1", "scale1", float, "the input scale scale1"),
    ("--strength", "strength", float, "the connected neuron's coupling strength"),
    ("--v-threshold", "v_threshold", float, "every neuron's firing threshold V_th"),
    ("--tau", "tau", float, "every neuron's membrane time constant tau"),
    ("--d-model", "d_model", int, "model width"),
    ("--heads", "heads", int, "attention heads"),
    ("--single-layers", "single_layers", int, "layers per modality"),
    ("--fusion-layers", "fusion_layers", int, "fusion layers"),
    ("--dropout", "dropout", float, "dropout"),
)


def options(group: Sequence[Decorator]) -> Decorator:
    """Apply a group of option decorators, in the order listed (first listed, first in ``--help``)."""
    def decorate(command: Callable) -> Callable:
        for option in reversed(group):
            command = option(command)
        return command

    return decorate


DATASET_OPTION = click.option("--dataset", type=DATASET_CHOICE, default=None,
                              help="Dataset profile [default: from the file, or sims without --data].")

#: ``--allow-nonfinite``, on every command that loads feature data (docs/data.md, Non-finite values).
allow_nonfinite_option = click.option(
    "--allow-nonfinite", "allow_nonfinite", is_flag=True,
    help=f"Accept a modality with more than {MAX_NONFINITE_SHARE:.0%} non-finite cells at its valid positions "
         "(they are set to 0); without it that is an error.",
)


def tensorboard_options(command: Callable) -> Callable:
    """``--tensorboard DIR``: TensorBoard event files of every run (docs/training.md, TensorBoard)."""
    return click.option(
        "--tensorboard", "tensorboard", default=None, metavar="DIR", type=click.Path(file_okay=False),
        help="Also write TensorBoard logs (losses, metrics, firing rates, learning rate per epoch) under DIR.",
    )(command)


DATA_OPTIONS = [
    DATASET_OPTION,
    click.option("--data", default=None, metavar="FILE",
                 help="MMSA feature file (.pkl or .h5). Without it: built-in synthetic data."),
    allow_nonfinite_option,
]

SEED_OPTIONS = [
    click.option("--seeds", default="1111", show_default=True,
                 help="Comma-separated seeds; several give mean ± std (an experiment trains each run with each)."),
]

RECIPE_OPTIONS = [
    click.option("--epochs", type=int, default=None,
                 help="Most epochs [default: the entry's max_epochs]; early stopping still applies."),
    click.option("--lr", type=float, default=None, help="Adam learning rate [default: the entry's]."),
    click.option("--batch-size", type=int, default=None, help="Batch size [default: the entry's]."),
    click.option("--patience", type=int, default=None,
                 help="Epochs without a better validation loss before stopping [default: the entry's, 8]."),
    click.option("--weight-decay", type=float, default=None, help="Adam weight decay [default: the entry's]."),
    click.option("--grad-clip", type=float, default=None,
                 help="Gradient norm clip, 0 for none [default: the entry's]."),
]

DEVICE_OPTIONS = [
    click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                 help="auto is CUDA when available."),
    click.option("--threads", type=click.IntRange(min=0), default=CLI_THREADS, show_default=True,
                 help="torch CPU threads of each run; 0 = the cores shared out (all of them for one process, "
                      "cores // jobs for an experiment's workers). See docs/training.md, Speed."),
]

EXPERIMENT_OPTIONS = [
    click.option("--out", default=None, metavar="DIR",
                 help="Experiment folder [default: runs/<command>-...]; the same command on the same DIR continues it."),
    click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Worker processes on this machine, sharing the study's trials."),
    click.option("--storage", default=None, metavar="URL",
                 help="The study's storage: a journal file path or a database URL (sqlite:///x.db, "
                      "postgresql+psycopg://...) [default: DIR/study.journal]. Workers on other machines "
                      "join with the same command and storage."),
    click.option("--study", "study", default=None, metavar="NAME", help="The study's name [default: DIR's name]."),
    click.option("--heartbeat", type=click.IntRange(min=1), default=60, show_default=True,
                 help="Seconds between a worker's heartbeats; a trial silent for 3 times as long is taken over."),
    click.option("--verbose", is_flag=True, help="Show every run's epoch lines."),
    tensorboard_options,
    click.option("--json", "json_", is_flag=True, help="Print the result as JSON (progress goes to stderr)."),
]


def model_override_options(exclude: Sequence[str] = ()) -> list[Decorator]:
    """``--scale1 ... --dropout`` less ``exclude`` (each default None: keep the entry's value)."""
    return [click.option(flag, name, type=kind, default=None, help=f"Model override: {what}.")
            for flag, name, kind, what in MODEL_OVERRIDES if name not in exclude]


def pop_model_overrides(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Remove the override options from a command's keyword arguments and return them as a dict."""
    return {name: kwargs.pop(name) for _, name, _, _ in MODEL_OVERRIDES if name in kwargs}

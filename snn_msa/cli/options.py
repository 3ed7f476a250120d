"""Command-line options shared by several commands."""

from __future__ import annotations

from typing import Any, Callable

import click

from snn_msa.data.nonfinite import MAX_NONFINITE_SHARE

#: (flag, keyword, type, what it overrides) for the model settings a command may change.
MODEL_OVERRIDES = (
    ("--scale1", "scale1", float, "the input scale scale1"),
    ("--strength", "strength", float, "the connected neuron's coupling strength"),
    ("--d-model", "d_model", int, "model width"),
    ("--heads", "heads", int, "attention heads"),
    ("--single-layers", "single_layers", int, "layers per modality"),
    ("--fusion-layers", "fusion_layers", int, "fusion layers"),
    ("--dropout", "dropout", float, "dropout"),
)


def model_override_options(command: Callable) -> Callable:
    """Add ``--scale1 ... --dropout`` (each default None: keep the entry's value)."""
    for flag, name, kind, what in reversed(MODEL_OVERRIDES):
        command = click.option(flag, name, type=kind, default=None, help=f"Model override: {what}.")(command)
    return command


def pop_model_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Remove the override options from a command's keyword arguments and return them as a dict."""
    return {name: options.pop(name) for _, name, _, _ in MODEL_OVERRIDES}


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

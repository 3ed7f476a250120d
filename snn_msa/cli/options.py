"""Command-line options shared by several commands."""

from __future__ import annotations

from typing import Any, Callable

import click

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

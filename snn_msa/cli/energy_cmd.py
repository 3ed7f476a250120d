"""``snn-msa energy``: a thin shell over :func:`snn_msa.energy.energy_report`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from snn_msa.data.synthetic import DEFAULT_SIZES
from snn_msa.registry import list_models

from .options import DATASET_OPTION, allow_nonfinite_option, model_override_options, options, pop_model_overrides
from snn_msa.data.validate import SPLITS

# The built-in data's test split, whole: the default never asks for more samples than it has.
DEFAULT_SAMPLES = DEFAULT_SIZES[2]


@click.command("energy")
@click.option("--model", "model", default=None, metavar="NAME",
              help=f"Zoo entry: {', '.join(list_models())} [default: the checkpoint's].")
@click.option("--checkpoint", default=None, metavar="PATH",
              help="A best.pt from 'snn-msa train': count the trained spiking model.")
@click.option("--data", default=None, metavar="FILE",
              help="MMSA feature file (.pkl or .h5) [default: built-in synthetic data, or the checkpoint's data].")
@DATASET_OPTION
@allow_nonfinite_option
@click.option("--samples", type=int, default=DEFAULT_SAMPLES, show_default=True,
              help="Samples to average over (the first of the split).")
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@click.option("--batch-size", type=int, default=None, help="Samples per forward [default: the checkpoint's, else 32].")
@click.option("--padding", type=click.Choice(["real", "all"]), default="real", show_default=True,
              help="real: count only positions within each sample's length; all: every position, as computed densely.")
@options(model_override_options())
@click.option("--seed", type=int, default=0, show_default=True, help="Torch seed of the untrained spiking model's weights.")
@click.option("--layers", is_flag=True, help="Print every layer of both models, not only the largest (a wide table).")
@click.option("--json", "json_", is_flag=True, help="Print the whole report as JSON (schema in docs/energy.md).")
@click.option("--markdown", is_flag=True, help="Print the totals, every layer and the assumptions as markdown.")
@click.option("--plot", default=None, metavar="FILE", help="Also draw the per-layer energy of both models to FILE (PNG).")
def energy(model, checkpoint, data, dataset, allow_nonfinite, samples, split, batch_size, padding, seed, layers, json_,
           markdown, plot, **options) -> None:
    """Per-layer operations and energy of a spiking model and its non-spiking twin on real inputs.

    Counts accumulates (spike x weight), multiply-accumulates (real x real) and
    other operations per layer, averaged per sample, and prices them at 45 nm
    (0.9 pJ per AC, 4.6 pJ per MAC) and with a memory-aware estimate (Lemaire).
    Prints the totals, the SNN/ANN ratio, the largest layers and every
    assumption; --layers, --json and --markdown give every layer.

    \b
    Examples:
      snn-msa energy --model sgmt-tav
      snn-msa energy --model sgmt-tav --layers
      snn-msa energy --model sgmt-tav --samples 16 --json > energy.json
      snn-msa energy --checkpoint runs/sgmt-tav-sims/seed-1111/best.pt --plot energy.png
      snn-msa energy --model sgmt-tav --dataset mosi --data ~/data/MOSI/unaligned.pkl --padding all
    """
    from snn_msa.data.errors import DataError
    from snn_msa.energy import EnergyError, energy_report, format_markdown, format_report, format_summary, plot_report
    from snn_msa.training import TrainingError

    if json_ and markdown:
        raise click.ClickException("--json and --markdown exclude each other: choose one output format.")
    if plot is not None and not Path(plot).expanduser().resolve().parent.is_dir():
        raise click.ClickException(f"could not write the plot to {plot}: its folder does not exist.")
    overrides = pop_model_overrides(options)
    try:
        report = energy_report(model, checkpoint=checkpoint, data=data, profile=dataset, samples=samples, split=split,
                               batch_size=batch_size, padding=padding, overrides=overrides, seed=seed,
                               allow_nonfinite=allow_nonfinite)
    except (EnergyError, DataError, TrainingError) as error:
        raise click.ClickException(str(error)) from None
    if plot is not None:
        try:
            plot_report(report, Path(plot).expanduser())
        except (OSError, ValueError) as error:
            raise click.ClickException(f"could not write the plot to {plot}: {error}") from None
    if json_:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(format_markdown(report) if markdown else format_report(report) if layers else format_summary(report))
    if plot is not None:
        click.echo(f"\nPlot written to {plot}.")

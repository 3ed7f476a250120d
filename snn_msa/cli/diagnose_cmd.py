"""``snn-msa diagnose``: does the spiking path carry the signal? A thin shell over :mod:`snn_msa.diagnosis`."""

from __future__ import annotations

import json

import click

from snn_msa.registry import list_models

from .options import DATASET_OPTION, allow_nonfinite_option, model_override_options, options, pop_model_overrides
from snn_msa.data.validate import SPLITS


@click.command("diagnose")
@click.option("--model", "model", default=None, metavar="NAME",
              help=f"Zoo entry, untrained: {', '.join(list_models())} [default: the checkpoint's].")
@click.option("--checkpoint", default=None, metavar="PATH", help="A best.pt from 'snn-msa train': its trained model.")
@click.option("--data", default=None, metavar="FILE",
              help="MMSA feature file (.pkl or .h5) [default: the checkpoint's data, else built-in synthetic data].")
@DATASET_OPTION
@allow_nonfinite_option
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Samples per forward (a sample's outputs do not depend on it).")
@options(model_override_options())
@click.option("--seed", type=int, default=0, show_default=True, help="Torch seed of an untrained model's weights.")
@click.option("--json", "json_", is_flag=True, help="Print the diagnosis as JSON.")
def diagnose(model, checkpoint, data, dataset, allow_nonfinite, split, batch_size, seed, json_, **options) -> None:
    """Per neuron layer: firing rate, silent neurons and all-zero steps on valid positions; and a knock-out.

    The knock-out evaluates the split with every spike set to zero and reports
    the change in MAE and Corr: how much of the prediction the spiking path
    carries. It warns when the network is effectively silent.

    \b
    Examples:
      snn-msa diagnose --model sgmt-tav
      snn-msa diagnose --checkpoint runs/sgmt-tav-sims/seed-1111/best.pt
      snn-msa diagnose --checkpoint best.pt --data ~/data/SIMS/unaligned.pkl --split valid --json
    """
    from snn_msa.data.errors import DataError
    from snn_msa.diagnosis import format_diagnosis, spike_diagnosis
    from snn_msa.training import TrainingError
    from snn_msa.training.model_source import model_with_data

    try:
        source = model_with_data(model, checkpoint, data, dataset, overrides=pop_model_overrides(options), seed=seed,
                                 allow_nonfinite=allow_nonfinite)
        report = spike_diagnosis(source.model, source.dataset.splits[split], source.dataset.profile.name,
                                 batch_size=batch_size)
    except (DataError, TrainingError) as error:
        raise click.ClickException(str(error)) from None
    report = {"model": source.name, "weights": source.weights, "data": source.dataset.source, "split": split,
              "samples": len(source.dataset.splits[split]), **report}
    if json_:
        click.echo(json.dumps(report, indent=2))
        return
    report["header"] = (f"{source.name} ({source.weights}) on the {split} split of {source.dataset.source} "
                        f"({report['samples']} samples); rates over valid positions only")
    click.echo(format_diagnosis(report))

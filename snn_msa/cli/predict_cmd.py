"""``snn-msa predict``: a thin shell over :func:`snn_msa.training.predict.predict_checkpoint`."""

from __future__ import annotations

from pathlib import Path

import click

from snn_msa.training.predict import SPLIT_CHOICES
from snn_msa.training.settings import DEVICES

from .options import allow_nonfinite_option


@click.command("predict")
@click.option("--checkpoint", "checkpoint", required=True, metavar="PATH", help="A best.pt written by 'snn-msa train'.")
@click.option("--data", default=None, metavar="FILE",
              help="Feature file (.pkl or .h5; labels optional) [default: the data the run trained on].")
@allow_nonfinite_option
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Where to write the rows: FILE.csv or FILE.jsonl.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default=None,
              help="Output format [default: from the extension of --out].")
@click.option("--split", type=click.Choice(SPLIT_CHOICES), default="test", show_default=True,
              help="Which split's samples; all = train, valid and test in turn.")
@click.option("--batch-size", type=int, default=None, help="Samples per forward [default: the run's]; the numbers do not depend on it.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(min=0), default=None, help="torch CPU threads [default: the run's]; 0 = torch's default.")
def predict(checkpoint, data, allow_nonfinite, out, fmt, split, batch_size, device, threads) -> None:
    """Write one row per sample: id, the prediction M, every head, the label where the file has one, the firing rate.

    Runs the model of a checkpoint on a feature file, with or without labels:
    inference on new features. Columns: split, id, M, the other heads (T, A,
    V, TAV for sgmt-tav), label_M (and label_T/A/V) when the file has labels,
    firing_rate (the sample's spikes over its valid neuron-steps; empty for a
    non-spiking model). The file is written whole or not at all.

    \b
    Examples:
      snn-msa predict --checkpoint runs/x/seed-1111/best.pt --out predictions.csv
      snn-msa predict --checkpoint best.pt --data ~/data/new_features.pkl --split all --out new.jsonl
    """
    from snn_msa.data.errors import DataError
    from snn_msa.training import TrainingError
    from snn_msa.training.predict import output_format, predict_checkpoint, write_predictions

    try:
        kind = output_format(out, fmt)
        if out.exists() and out.is_dir():
            raise click.ClickException(f"--out {out} is a folder; give a file name such as {out}/predictions.csv.")
        if not out.expanduser().resolve().parent.is_dir():
            raise click.ClickException(f"cannot write {out}: its folder does not exist; create it first.")
        result = predict_checkpoint(checkpoint, data, split, batch_size=batch_size, device=device, threads=threads,
                                    allow_nonfinite=allow_nonfinite)
        write_predictions(result["rows"], out, kind)
    except (TrainingError, DataError) as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        raise click.ClickException(f"could not write {out}: {error.strerror or error}.") from None
    tag = " (SYNTHETIC data)" if result["synthetic"] else ""
    click.echo(f"wrote {out}: {len(result['rows'])} rows ({', '.join(result['splits'])} of {result['data']}{tag}; "
               f"{kind}; columns {', '.join(result['columns'])})")

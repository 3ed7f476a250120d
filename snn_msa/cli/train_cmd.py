"""``snn-msa train`` and ``snn-msa eval``: thin shells over :mod:`snn_msa.training`."""

from __future__ import annotations

import json

import click

from snn_msa.registry import list_models
from snn_msa.training.distributed import is_main_process
from snn_msa.training.settings import DEVICES

from .options import (
    DATA_OPTIONS,
    DEVICE_OPTIONS,
    RECIPE_OPTIONS,
    SEED_OPTIONS,
    allow_nonfinite_option,
    model_override_options,
    options,
    pop_model_overrides,
    tensorboard_options,
)
from snn_msa.data.validate import SPLITS


def _expected_errors() -> tuple[type[BaseException], ...]:
    from snn_msa.data.errors import DataError
    from snn_msa.training import TrainingError

    return (TrainingError, DataError)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"1111,1112"`` -> ``(1111, 1112)``; a clear error for an empty entry or a word that is not an integer.

    An empty entry (``1111,,1112`` or a trailing comma) is refused rather than
    skipped: it is most often a seed lost while editing the list.
    """
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        raise click.ClickException("--seeds needs at least one integer, for example --seeds 1111.")
    if not all(parts):
        raise click.ClickException(f"--seeds has an empty entry in {text!r}; give integers separated by single commas, "
                                   "for example 1111,1112,1113.")
    try:
        return tuple(int(part) for part in parts)
    except ValueError:
        raise click.ClickException(f"--seeds takes integers separated by commas, for example 1111,1112,1113; got {text!r}.") from None


def check_model(name: str) -> str:
    """``name`` if it is a zoo entry, else an error listing the known ones."""
    from snn_msa.registry import UnknownModelError, get_entry

    try:
        get_entry(name)
    except UnknownModelError as error:
        raise click.ClickException(f"{error} See 'snn-msa models'.") from None
    return name


def check_dataset(name: str | None) -> str | None:
    """The profile name of ``name`` (``None`` stays ``None``), else an error listing the known ones."""
    if name is None:
        return None
    from snn_msa.profiles import get_profile

    try:
        return get_profile(name).name
    except ValueError as error:
        raise click.ClickException(str(error)) from None


@click.command("train")
@click.option("--model", "model", required=True, metavar="NAME", help=f"Zoo entry: {', '.join(list_models())}.")
@options(DATA_OPTIONS)
@options(SEED_OPTIONS)
@options(RECIPE_OPTIONS)
@options(model_override_options())
@options(DEVICE_OPTIONS)
@click.option("--out", default=None, metavar="DIR", help="Run folder [default: runs/<model>-<dataset>-<time>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last completed epoch.")
@click.option("--overwrite", is_flag=True, help="Replace the run already in --out.")
@click.option("--quiet", is_flag=True, help="No progress bar or epoch lines; only the final test summary.")
@tensorboard_options
@click.option("--json", "json_", is_flag=True, help="Print results.json to stdout (progress lines go to stderr).")
def train(model, dataset, data, allow_nonfinite, seeds, epochs, lr, batch_size, patience, weight_decay, grad_clip, device,
          threads, out, resume, overwrite, quiet, tensorboard, json_, **options) -> None:
    """Train a zoo model with early stopping and test its best weights once per seed.

    Writes DIR/results.json (configuration, per-seed and mean ± std test
    metrics, best epochs, firing rates, time per epoch) and DIR/seed-<s>/best.pt
    (weights and full configuration; 'snn-msa eval' rebuilds the model from it).

    Under torchrun it trains one model on N processes with
    DistributedDataParallel; --batch-size stays the global batch (docs/scale.md).

    \b
    Examples:
      snn-msa train --model sgmt-tav
      snn-msa train --model sgmt-tav --dataset simsv2 --data ~/data/SIMSv2/unaligned.pkl --seeds 1111,1112,1113
      snn-msa train --model sgmt-tav --epochs 5 --scale1 1.0 --strength 0.05 --out runs/try
      snn-msa train --model sgmt-tav --out runs/try --resume
      snn-msa train --model sgmt-tav --tensorboard runs/tb   # then: tensorboard --logdir runs/tb
      torchrun --nproc-per-node 2 $(which snn-msa) train --model sgmt-tav --device cpu
    """
    from snn_msa.training import TrainSettings
    from snn_msa.training import train as run_training

    check_model(model)
    if resume and out is None:
        raise click.ClickException("--resume needs --out DIR: the folder of the run to continue.")
    overrides = pop_model_overrides(options)
    try:
        settings = TrainSettings(
            model=model, dataset=check_dataset(dataset), data=data, seeds=parse_seeds(seeds), epochs=epochs, lr=lr,
            batch_size=batch_size, patience=patience, weight_decay=weight_decay, grad_clip=grad_clip, device=device,
            threads=threads or None, out=out, model_overrides=overrides, resume=resume, overwrite=overwrite, quiet=quiet,
            allow_nonfinite=allow_nonfinite, tensorboard=tensorboard,
        )
        echo = (lambda line: click.echo(line, err=True)) if json_ else click.echo
        results = run_training(settings, echo=echo, bars=False if json_ else None)
    except _expected_errors() as error:
        if not is_main_process():  # under torchrun every rank fails alike; rank 0 alone says why
            raise SystemExit(1) from None
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        where = f"--out {out} --resume" if out else "--out DIR --resume with the run folder printed above"
        raise click.ClickException(f"interrupted; completed epochs are saved. Continue with the same options and {where}.") from None
    if not is_main_process():
        return
    if json_:
        click.echo(json.dumps(results, indent=2))
    elif quiet:
        from snn_msa.training.trainer import summary_lines

        for line in summary_lines(results):
            click.echo(line)


@click.command("eval")
@click.option("--checkpoint", "checkpoint", required=True, metavar="PATH", help="A best.pt written by 'snn-msa train'.")
@click.option("--data", default=None, metavar="FILE", help="Feature file [default: the data the run trained on].")
@allow_nonfinite_option
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--batch-size", type=int, default=None, help="Evaluation batch size [default: the run's; a sample's prediction does not depend on it].")
@click.option("--threads", type=int, default=None, help="torch CPU threads [default: the run's]; 0 = torch's default.")
@click.option("--json", "json_", is_flag=True, help="Print the result as JSON.")
def eval_(checkpoint, data, allow_nonfinite, split, device, batch_size, threads, json_) -> None:
    """Rebuild a model from its checkpoint alone and score it on a split.

    On the run's own test split the metrics equal those training reported.

    \b
    Examples:
      snn-msa eval --checkpoint runs/sgmt-tav-sims/seed-1111/best.pt
      snn-msa eval --checkpoint best.pt --data ~/data/SIMS/unaligned.pkl --split valid --json
    """
    from snn_msa.training import evaluate_checkpoint
    from snn_msa.training.results import format_metrics

    if batch_size is not None and batch_size < 1:
        raise click.ClickException(f"--batch-size must be at least 1, got {batch_size}.")
    if threads is not None and threads < 0:
        raise click.ClickException(f"--threads must be 0 (torch's default) or more, got {threads}.")
    try:
        result = evaluate_checkpoint(checkpoint, data=data, split=split, device=device, batch_size=batch_size,
                                     threads=threads, allow_nonfinite=allow_nonfinite)
    except _expected_errors() as error:
        raise click.ClickException(str(error)) from None
    if json_:
        click.echo(json.dumps(result, indent=2))
        return
    tag = " (SYNTHETIC data)" if result["synthetic"] else ""
    click.echo(f"{result['model']} seed {result['seed']} (best epoch {result['best_epoch']}) on {split} "
               f"of {result['data']}{tag}: {result['samples']} samples, batch {result['batch_size']}")
    click.echo(f"  {format_metrics(result['metrics'], result['metric_keys'])}")
    if result["firing_rate"] is not None:
        click.echo(f"  mean firing rate {result['firing_rate']:.4f}")
    if result["matches_reported"] is True:
        click.echo(f"  equal to the {split} metrics training reported")
    elif result["matches_reported"] is False:
        click.echo(f"  DIFFERENT from what training reported: {format_metrics(result['reported'], result['metric_keys'])}")
    elif not result["same_data_as_training"]:
        click.echo(f"  (not the {split} split the run used, so there is nothing to compare with)")

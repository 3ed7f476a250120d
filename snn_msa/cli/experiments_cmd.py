"""``snn-msa grid``, ``snn-msa ablate`` and ``snn-msa compare``: thin shells over :mod:`snn_msa.experiments`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import click

from snn_msa.registry import list_models
from snn_msa.training.settings import CLI_THREADS, DEVICES

from .options import MODEL_OVERRIDES
from .train_cmd import check_dataset, check_model, parse_seeds


def _expected_errors() -> tuple[type[BaseException], ...]:
    from snn_msa.data.errors import DataError
    from snn_msa.experiments import ExperimentError
    from snn_msa.training import TrainingError

    return (ExperimentError, TrainingError, DataError)


def parse_floats(text: str, option: str, example: str) -> tuple[float, ...]:
    """``"0.5,1,2"`` -> ``(0.5, 1.0, 2.0)``; a clear error for an empty list or a word that is not a number."""
    parts = [part for part in text.replace(" ", "").split(",") if part]
    if not parts:
        raise click.ClickException(f"{option} needs at least one number, for example {option} {example}.")
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise click.ClickException(f"{option} takes numbers separated by commas, for example {option} {example}; "
                                       f"{part!r} is not a number.") from None
        if not math.isfinite(value):
            raise click.ClickException(f"{option} takes finite numbers; got {part!r}.")
        values.append(value)
    return tuple(values)


def parse_models(text: str) -> list[str]:
    """``"sgmt-tav,sgmt-tav-ann"`` -> the names, each checked against the zoo."""
    names = [part for part in text.replace(" ", "").split(",") if part]
    if not names:
        raise click.ClickException(f"--models needs at least one zoo entry, for example --models sgmt-tav,sgmt-tav-ann "
                                   f"(known: {', '.join(list_models())}).")
    return [check_model(name) for name in names]


def _train_options(fn: Callable) -> Callable:
    """The train command's options that every experiment passes to each of its runs."""
    options = [
        click.option("--dataset", default=None, metavar="NAME",
                     help="Dataset profile: sims, simsv2, mosi, mosei (default: from the file, or sims without --data)."),
        click.option("--data", default=None, metavar="FILE",
                     help="MMSA feature file (.pkl or .h5). Without it: built-in synthetic data."),
        click.option("--seeds", default="1111", show_default=True, help="Comma-separated seeds, the same for every run."),
        click.option("--epochs", type=int, default=None,
                     help="Most epochs per run [default: the entry's max_epochs]; early stopping still applies."),
        click.option("--lr", type=float, default=None, help="Adam learning rate [default: the entry's]."),
        click.option("--batch-size", type=int, default=None, help="Batch size [default: the entry's]."),
        click.option("--patience", type=int, default=None, help="Early-stopping patience [default: the entry's, 8]."),
        click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                     help="auto is CUDA when available."),
        click.option("--threads", type=int, default=CLI_THREADS, show_default=True,
                     help="torch CPU threads of each run, as for 'snn-msa train'; 0 = cores // jobs."),
        click.option("--out", default=None, metavar="DIR",
                     help="Experiment folder [default: runs/<command>-...]; rerun with the same DIR to continue."),
        click.option("--jobs", type=int, default=1, show_default=True, help="Runs trained at once, in separate processes."),
        click.option("--verbose", is_flag=True, help="Show every run's epoch lines."),
        click.option("--json", "json_", is_flag=True, help="Print the result as JSON (progress goes to stderr)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _override_options(exclude: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """The model override options of ``snn-msa train`` (less ``exclude``), applied to every run."""
    def decorate(fn: Callable) -> Callable:
        for flag, name, kind, what in reversed(MODEL_OVERRIDES):
            if name not in exclude:
                fn = click.option(flag, name, type=kind, default=None, help=f"Model override for every run: {what}.")(fn)
        return fn

    return decorate


def _base_settings(model: str, opts: dict[str, Any]):
    """The settings every run shares; pops the model override options from ``opts``."""
    from snn_msa.training import TrainSettings, TrainingError

    if opts["jobs"] < 1:
        raise click.ClickException(f"--jobs must be at least 1 (processes training at once), got {opts['jobs']}.")
    if opts["threads"] < 0:
        raise click.ClickException(f"--threads must be 0 (cores // jobs) or more, got {opts['threads']}.")
    shared = {name: opts.pop(name) for _, name, _, _ in MODEL_OVERRIDES if name in opts}
    _check_overrides(shared.get("scale1"), shared.get("strength"))
    try:
        return TrainSettings(
            model=model, dataset=check_dataset(opts["dataset"]), data=opts["data"], seeds=parse_seeds(opts["seeds"]),
            epochs=opts["epochs"], lr=opts["lr"], batch_size=opts["batch_size"], patience=opts["patience"],
            device=opts["device"], threads=opts["threads"] or None, model_overrides=shared, quiet=True,
        )
    except TrainingError as error:
        raise click.ClickException(str(error)) from None


def _default_out(command: str, opts: dict[str, Any], model: str | None = None) -> str:
    data = Path(opts["data"]).stem if opts["data"] else f"synthetic-{check_dataset(opts['dataset']) or 'sims'}"
    return str(Path("runs") / "-".join(p for p in (command, model, data) if p))


def _run(call: Callable[[Callable[[str], None]], dict[str, Any]], out: str, json_: bool) -> None:
    from snn_msa.output_lock import hold_output

    echo = (lambda line: click.echo(line, err=True)) if json_ else click.echo
    try:
        with hold_output(out):  # one experiment per folder; a second one aimed here stops at once
            result = call(echo)
    except _expected_errors() as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        raise click.ClickException(f"interrupted; finished runs and completed epochs are kept in {out}/runs. "
                                   f"Run the same command again (same --out) to continue.") from None
    if json_:
        click.echo(json.dumps({k: v for k, v in result.items() if k != "markdown"}, indent=2))
        return
    click.echo("")
    click.echo(result["markdown"])
    click.echo("")
    click.echo("wrote " + ", ".join(result["files"].values()))


@click.command("grid")
@click.option("--model", default="sgmt-tav", show_default=True, metavar="NAME", help="Zoo entry whose scale1 and strength vary.")
@click.option("--scale1", "scale1", default="0.5,1,2,3", show_default=True, help="Comma-separated scale1 values (> 0).")
@click.option("--strength", "strength", default="0,0.01,0.025,0.05,0.1", show_default=True,
              help="Comma-separated connection strengths (>= 0).")
@click.option("--metric", default=None, metavar="KEY",
              help="Test metric of the heatmap and line charts [default: Mult_acc_5 on SIMS, Mult_acc_7 on MOSI/MOSEI].")
@_train_options
@_override_options(exclude=("scale1", "strength"))
def grid(model, scale1, strength, metric, **opts) -> None:
    """Grid over scale1 and strength: the paper's Table 4 and Figure 3.

    Trains one run per (scale1, strength) cell and writes DIR/grid.csv (one row
    per cell: mean and std of every metric over seeds, firing rate),
    DIR/grid.md (the table, best cell marked) and DIR/grid.png (heatmap and
    the two line charts through the best cell). The best cell has the lowest
    mean validation loss; test metrics are reported, never used to choose.
    Finished runs in DIR are reused, so an interrupted grid continues.

    \b
    Examples:
      snn-msa grid --model sgmt-tav --epochs 3 --scale1 0.5,2 --strength 0,0.05
      snn-msa grid --data ~/data/SIMS/unaligned.pkl --seeds 1111,1112,1113 --jobs 2 --out grids/sims
    """
    from snn_msa.experiments import run_grid

    check_model(model)
    scale1s = parse_floats(scale1, "--scale1", "0.5,1,2,3")
    strengths = parse_floats(strength, "--strength", "0,0.01,0.025,0.05,0.1")
    base = _base_settings(model, opts)
    out = opts["out"] or _default_out("grid", opts, model)
    _run(lambda echo: run_grid(model, scale1s, strengths, base, out, jobs=opts["jobs"], metric=metric,
                               verbose=opts["verbose"], echo=echo), out, opts["json_"])


@click.command("ablate")
@_train_options
@_override_options()
def ablate(**opts) -> None:
    """Modality ablation: the paper's Table 3 (sgmt-tav against sgmt-av, sgmt-tv, sgmt-ta).

    Same seeds, data and recipe for all four; writes DIR/ablation.csv and
    DIR/ablation.md, with the paper's numbers beside ours on CH-SIMS v2.

    \b
    Examples:
      snn-msa ablate --epochs 3
      snn-msa ablate --dataset simsv2 --data ~/data/SIMSv2/unaligned.pkl --seeds 1111,1112,1113 --jobs 2
    """
    from snn_msa.experiments import run_ablation

    base = _base_settings("sgmt-tav", opts)
    out = opts["out"] or _default_out("ablate", opts)
    _run(lambda echo: run_ablation(base, out, jobs=opts["jobs"], verbose=opts["verbose"], echo=echo), out, opts["json_"])


@click.command("compare")
@click.option("--models", "models", default="sgmt-tav,sgmt-tav-ann", show_default=True,
              help=f"Comma-separated zoo entries ({', '.join(list_models())}).")
@click.option("--energy-samples", type=int, default=32, show_default=True,
              help="Test samples the energy per sample averages over (0: leave energy out).")
@_train_options
@_override_options()
def compare(models, energy_samples, **opts) -> None:
    """Compare zoo models: a Table 1/2-style table with each model's energy per sample.

    Same seeds, data and recipe for every model; writes DIR/compare.csv and
    DIR/compare.md with the metric columns (mean ± std over seeds), the firing
    rate and the energy per sample, and the paper's numbers beside ours on
    CH-SIMS v2 and CMU-MOSEI.

    \b
    Examples:
      snn-msa compare --epochs 3
      snn-msa compare --models sgmt-tav,sgmt-tav-ann --dataset simsv2 --data ~/data/SIMSv2/unaligned.pkl --seeds 1111,1112,1113
    """
    from snn_msa.experiments import run_comparison

    names = parse_models(models)
    if energy_samples < 0:
        raise click.ClickException(f"--energy-samples must be 0 or more (0 leaves energy out), got {energy_samples}.")
    base = _base_settings(names[0], opts)
    out = opts["out"] or _default_out("compare", opts)
    _run(lambda echo: run_comparison(names, base, out, jobs=opts["jobs"], energy_samples=energy_samples,
                                     verbose=opts["verbose"], echo=echo), out, opts["json_"])


def _check_overrides(scale1: float | None, strength: float | None) -> None:
    if scale1 is not None and not (math.isfinite(scale1) and scale1 > 0):
        raise click.ClickException(f"--scale1 must be a number > 0, got {scale1:g}.")
    if strength is not None and not (math.isfinite(strength) and strength >= 0):
        raise click.ClickException(f"--strength must be a number >= 0, got {strength:g}.")

"""``snn-msa grid``, ``snn-msa ablate`` and ``snn-msa compare``: thin shells over :mod:`snn_msa.experiments`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import click

from snn_msa.registry import list_models

from .options import (
    DATA_OPTIONS,
    DEVICE_OPTIONS,
    EXPERIMENT_OPTIONS,
    RECIPE_OPTIONS,
    SEED_OPTIONS,
    model_override_options,
    options,
    pop_model_overrides,
)
from .train_cmd import check_model, parse_seeds


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


def experiment_options(exclude: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """What every experiment command takes: the train command's groups (less the overrides in ``exclude``) and the study's."""
    group = (DATA_OPTIONS + SEED_OPTIONS + RECIPE_OPTIONS + model_override_options(exclude) + DEVICE_OPTIONS
             + EXPERIMENT_OPTIONS)
    return options(group)


def _base_settings(model: str, opts: dict[str, Any]):
    """The settings every run shares; pops the model override options from ``opts``."""
    from snn_msa.training import TrainSettings, TrainingError

    shared = pop_model_overrides(opts)
    _check_overrides(shared.get("scale1"), shared.get("strength"))
    try:
        return TrainSettings(
            model=model, dataset=opts["dataset"], data=opts["data"], seeds=parse_seeds(opts["seeds"]),
            epochs=opts["epochs"], lr=opts["lr"], batch_size=opts["batch_size"], patience=opts["patience"],
            weight_decay=opts["weight_decay"], grad_clip=opts["grad_clip"], device=opts["device"],
            threads=opts["threads"] or None, model_overrides=shared, quiet=True,
            allow_nonfinite=opts["allow_nonfinite"], tensorboard=opts["tensorboard"],
        )
    except TrainingError as error:
        raise click.ClickException(str(error)) from None


def _study_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of run_grid / run_ablation / run_comparison that say how and where the study runs."""
    return {"jobs": opts["jobs"], "storage": opts["storage"], "study": opts["study"], "heartbeat": opts["heartbeat"],
            "verbose": opts["verbose"]}


def _default_out(command: str, opts: dict[str, Any], model: str | None = None) -> str:
    data = Path(opts["data"]).stem if opts["data"] else f"synthetic-{opts['dataset'] or 'sims'}"
    return str(Path("runs") / "-".join(p for p in (command, model, data) if p))


def _run(call: Callable[[Callable[[str], None]], dict[str, Any]], out: str, json_: bool) -> None:
    echo = (lambda line: click.echo(line, err=True)) if json_ else click.echo
    try:
        result = call(echo)
    except _expected_errors() as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        raise click.ClickException(f"interrupted; finished trials and completed epochs are kept in {out}. "
                                   f"Run the same command again (same --out and --storage) to continue.") from None
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
@experiment_options(exclude=("scale1", "strength"))
def grid(model, scale1, strength, metric, **opts) -> None:
    """Grid over scale1 and strength: the paper's Table 4 and Figure 3.

    Trains one run per (scale1, strength) cell and writes DIR/grid.csv (one row
    per cell: mean and std of every metric over seeds, firing rate),
    DIR/grid.md (the table, best cell marked) and DIR/grid.png (heatmap and
    the two line charts through the best cell). The best cell has the lowest
    mean validation loss; test metrics are reported, never used to choose.

    Each (cell, seed) is a trial of an Optuna study (Optuna's grid sampler) in
    DIR/study.journal or --storage: workers started anywhere with the same
    command and storage share the trials, a killed worker's trial is taken
    over, and the same command on a finished study only rebuilds the tables.

    \b
    Examples:
      snn-msa grid --model sgmt-tav --epochs 3 --scale1 0.5,2 --strength 0,0.05
      snn-msa grid --data ~/data/SIMS/unaligned.pkl --seeds 1111,1112,1113 --jobs 2 --out grids/sims
      snn-msa grid --data /shared/sims.pkl --out /shared/grids/sims --storage postgresql+psycopg://user@db/snn
    """
    from snn_msa.experiments import run_grid

    check_model(model)
    scale1s = parse_floats(scale1, "--scale1", "0.5,1,2,3")
    strengths = parse_floats(strength, "--strength", "0,0.01,0.025,0.05,0.1")
    base = _base_settings(model, opts)
    out = opts["out"] or _default_out("grid", opts, model)
    _run(lambda echo: run_grid(model, scale1s, strengths, base, out, metric=metric, echo=echo,
                               **_study_options(opts)), out, opts["json_"])


@click.command("ablate")
@experiment_options()
def ablate(**opts) -> None:
    """Modality ablation: the paper's Table 3 (sgmt-tav against sgmt-av, sgmt-tv, sgmt-ta).

    Same seeds, data and recipe for all four; writes DIR/ablation.csv and
    DIR/ablation.md, with the paper's numbers beside ours on CH-SIMS v2. Each
    (model, seed) is a trial of an Optuna study, as for 'snn-msa grid'.

    \b
    Examples:
      snn-msa ablate --epochs 3
      snn-msa ablate --dataset simsv2 --data ~/data/SIMSv2/unaligned.pkl --seeds 1111,1112,1113 --jobs 2
    """
    from snn_msa.experiments import run_ablation

    base = _base_settings("sgmt-tav", opts)
    out = opts["out"] or _default_out("ablate", opts)
    _run(lambda echo: run_ablation(base, out, echo=echo, **_study_options(opts)), out, opts["json_"])


@click.command("compare")
@click.option("--models", "models", default="sgmt-tav,sgmt-tav-ann", show_default=True,
              help=f"Comma-separated zoo entries ({', '.join(list_models())}).")
@click.option("--energy-samples", type=int, default=32, show_default=True,
              help="Test samples the energy per sample averages over (0: leave energy out).")
@experiment_options()
def compare(models, energy_samples, **opts) -> None:
    """Compare zoo models: a Table 1/2-style table with each model's energy per sample.

    Same seeds, data and recipe for every model; writes DIR/compare.csv and
    DIR/compare.md with the metric columns (mean ± std over seeds), the firing
    rate and the energy per sample, and the paper's numbers beside ours on
    CH-SIMS v2 and CMU-MOSEI. Each (model, seed) is a trial of an Optuna
    study, as for 'snn-msa grid'.

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
    _run(lambda echo: run_comparison(names, base, out, energy_samples=energy_samples, echo=echo,
                                     **_study_options(opts)), out, opts["json_"])


def _check_overrides(scale1: float | None, strength: float | None) -> None:
    if scale1 is not None and not (math.isfinite(scale1) and scale1 > 0):
        raise click.ClickException(f"--scale1 must be a number > 0, got {scale1:g}.")
    if strength is not None and not (math.isfinite(strength) and strength >= 0):
        raise click.ClickException(f"--strength must be a number >= 0, got {strength:g}.")

"""The grid over scale1 and strength: the paper's Table 4 and Figure 3 on any data.

One run per (scale1, strength) pair, each with the experiment's seeds. The
best cell is the one with the lowest mean validation loss (the MAE of head M
that early stopping minimises); the test metrics of every cell are reported and
never used to choose. Writes ``DIR/grid.csv``, ``DIR/grid.md`` and ``DIR/grid.png``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

from ..data import MSADataset
from ..metrics import METRIC_KEYS, metric_family, primary_metric
from ..training import TrainSettings
from .errors import ExperimentError
from .plots import grid_figure
from .study import DEFAULT_HEARTBEAT
from .runs import Echo, Run, execute_runs, load_experiment_data
from .tables import (
    data_fields,
    markdown_table,
    mean_std_text,
    metric_columns,
    number_text,
    outcome_row,
    rate_text,
    settings_lines,
    shaped_data,
    write_csv,
    write_markdown,
)

PAPER_SCALE1 = (0.5, 1.0, 2.0, 3.0)
PAPER_STRENGTH = (0.0, 0.01, 0.025, 0.05, 0.1)
SELECTION = "lowest mean validation loss (MAE of head M at each seed's best epoch)"


def metrics_on(profile: str, metric: str | None) -> tuple[list[str], str]:
    """The metric keys reported on the ``profile`` data set, and ``metric`` (default: the paper's primary one)
    once it is known to be one of them."""
    keys = METRIC_KEYS[metric_family(profile)]
    metric = metric or primary_metric(profile)
    if metric not in keys:
        raise ExperimentError(f"metric {metric!r} is not reported on {profile}; choose one of {', '.join(keys)}.")
    return keys, metric


def check_values(name: str, values: Sequence[float], *, allow_zero: bool) -> tuple[float, ...]:
    """The grid's values of ``name`` as floats: one or more, finite, distinct, > 0 (or >= 0)."""
    values = tuple(values)
    if not values:
        raise ExperimentError(f"{name} needs at least one value, for example {name} {'0,0.01' if allow_zero else '0.5,1'}.")
    checked = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ExperimentError(f"{name} takes finite numbers, got {value!r}.")
        if value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ExperimentError(f"every {name} value must be {bound}, got {value:g}.")
        checked.append(float(value))
    repeated = sorted({v for v in checked if checked.count(v) > 1})
    if repeated:
        raise ExperimentError(f"{name} lists {', '.join(f'{v:g}' for v in repeated)} more than once; list each value once.")
    return tuple(checked)


def grid_runs(model: str, scale1s: Sequence[float], strengths: Sequence[float]) -> list[Run]:
    """The runs of the grid in the paper's order: strength by strength, scale1 within."""
    return [Run(model, {"scale1": s1, "strength": st}, searched=("scale1", "strength")) for st in strengths for s1 in scale1s]


def select_best(rows: Sequence[dict[str, Any]], key: str = "valid_loss_mean") -> int | None:
    """Index of the row with the lowest ``key`` (the mean validation loss); the first on ties.

    Test metrics play no part. Rows without a finite value (failed runs) are
    skipped; ``None`` when no row has one.

    >>> select_best([{"valid_loss_mean": 0.31}, {"valid_loss_mean": None}, {"valid_loss_mean": 0.29}])
    2
    """
    best, best_value = None, math.inf
    for index, row in enumerate(rows):
        value = row.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value) and value < best_value:
            best, best_value = index, value
    return best


def run_grid(
    model: str,
    scale1s: Sequence[float],
    strengths: Sequence[float],
    base: TrainSettings,
    out: str | os.PathLike,
    *,
    dataset: MSADataset | None = None,
    jobs: int = 1,
    storage: str | None = None,
    study: str | None = None,
    heartbeat: int = DEFAULT_HEARTBEAT,
    metric: str | None = None,
    verbose: bool = False,
    echo: Echo | None = None,
) -> dict[str, Any]:
    """Train (or reuse) every cell of the grid and write ``grid.csv``, ``grid.md`` and ``grid.png`` in ``out``.

    Args:
        model: the zoo entry (``scale1`` and ``strength`` are its overrides).
        scale1s, strengths: the grid's values (scale1 > 0, strength >= 0).
        base: what every cell shares: data, seeds, epochs, recipe, device and
            other model overrides (its ``model`` is replaced).
        out: the experiment folder; runs go to ``out/runs/<name>``.
        dataset: the loaded data (default: loaded from ``base``).
        jobs: cells trained at once, each in its own process.
        metric: the test metric of the heatmap and line charts (default: the
            paper's primary one, Mult_acc_5 on SIMS, Mult_acc_7 on MOSI/MOSEI).
        verbose: show the trainer's epoch lines.
        echo: where progress lines go (``None``: nowhere).

    Returns:
        ``{"rows": [...], "best": index, "best_row": {...}, "files": {...}, ...}``;
        each row holds scale1, strength, mean and std of the validation loss and
        of every test metric, and the mean firing rate.
    """
    scale1s = check_values("--scale1", scale1s, allow_zero=False)
    strengths = check_values("--strength", strengths, allow_zero=True)
    dataset = load_experiment_data(base, dataset)
    keys, metric = metrics_on(dataset.profile.name, metric)

    runs = grid_runs(model, scale1s, strengths)
    outcomes = execute_runs(runs, base.with_changes(model=model), out, dataset=dataset, jobs=jobs, storage=storage,
                            study=study, heartbeat=heartbeat, kind="grid", verbose=verbose, echo=echo)
    rows = []
    for outcome in outcomes:
        row = outcome_row(outcome, keys)
        rows.append({"scale1": outcome.run.overrides["scale1"], "strength": outcome.run.overrides["strength"], **row})
    best = select_best(rows)
    for index, row in enumerate(rows):
        row["best"] = index == best

    out = Path(out).expanduser()
    files = {"csv": str(out / "grid.csv"), "md": str(out / "grid.md"), "png": str(out / "grid.png")}
    columns = (["scale1", "strength", "seeds", "valid_loss_mean", "valid_loss_std"] + metric_columns(keys)
               + ["firing_rate_mean", "firing_rate_std", "best_epoch_mean", "best", "status", "run", "error"])
    write_csv(files["csv"], rows, columns)
    text = grid_markdown(rows, scale1s, strengths, keys, metric, best, model,
                         settings_lines(base, dataset, base.seeds))
    write_markdown(files["md"], text)
    grid_figure(rows, scale1s, strengths, metric, best, files["png"],
                title=f"{model} on {shaped_data(dataset)}")
    return {
        "kind": "grid",
        "model": model,
        **data_fields(dataset, base.seeds),
        "scale1": list(scale1s),
        "strength": list(strengths),
        "metric_keys": keys,
        "metric": metric,
        "selection": SELECTION,
        "rows": rows,
        "best": best,
        "best_row": rows[best] if best is not None else None,
        "files": files,
        "markdown": text,
    }


def grid_markdown(rows, scale1s, strengths, keys, metric, best, model, context: list[str]) -> str:
    """``grid.md``: how the grid ran, the key metric by scale1 and strength, then every cell in full."""
    n = max((r["seeds"] for r in rows), default=0)
    lines = [f"# Grid over scale1 and strength: {model}", "", *context,
             f"- Selection: the best cell has the {SELECTION}; it is **bold** and marked ◀ best. "
             "The test metrics are reported, never used to choose.", ""]
    if best is None:
        lines += ["No cell finished (every run failed), so there is no best cell.", ""]
    else:
        b = rows[best]
        lines += [f"Best cell: scale1 = {b['scale1']:g}, strength = {b['strength']:g} "
                  f"(validation loss {number_text(b['valid_loss_mean'])}; test {metric} "
                  f"{mean_std_text(b[f'{metric}_mean'], b[f'{metric}_std'], n)}).", ""]
    cell = {(r["scale1"], r["strength"]): (i, r) for i, r in enumerate(rows)}
    lines += [f"## Test {metric} by strength (rows) and scale1 (columns)", ""]
    pivot = []
    for strength in strengths:
        line = [f"{strength:g}"]
        for scale1 in scale1s:
            index, row = cell[(scale1, strength)]
            text = "failed" if row["status"] == "failed" else mean_std_text(row[f"{metric}_mean"], row[f"{metric}_std"], n)
            line.append(f"**{text}**" if index == best else text)
        pivot.append(line)
    lines += [markdown_table(["strength \\ scale1"] + [f"{v:g}" for v in scale1s], pivot), ""]
    lines += ["## Every cell (test metrics of each seed's best epoch)", ""]
    header = ["strength", "scale1", "valid loss"] + keys + ["firing rate", "best epoch", ""]
    body = []
    for index, row in enumerate(rows):
        mark = index == best
        values = [f"{row['strength']:g}", f"{row['scale1']:g}",
                  mean_std_text(row["valid_loss_mean"], row["valid_loss_std"], n)]
        if row["status"] == "failed":
            values += ["failed"] + [""] * (len(keys) - 1) + ["", ""]
        else:
            values += [mean_std_text(row[f"{k}_mean"], row[f"{k}_std"], n) for k in keys]
            values += [rate_text(row["firing_rate_mean"]), number_text(row["best_epoch_mean"], 1)]
        values = [f"**{v}**" if mark and v else v for v in values]
        values.append("◀ best" if mark else "")
        body.append(values)
    lines += [markdown_table(header, body), ""]
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        lines += ["Failed cells (the loss became NaN or infinite; rerun to retry):", ""]
        lines += [f"- scale1 = {r['scale1']:g}, strength = {r['strength']:g}: {r['error']}" for r in failed]
        lines.append("")
    lines += ["![grid: heatmap and the line charts through the best cell](grid.png)"]
    return "\n".join(lines)

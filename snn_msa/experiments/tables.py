"""Tables of an experiment: CSV for machines, Markdown for people, both written atomically.

Metric values are MMSA's fractions with 4 decimals (as the zoo cards store the
paper's numbers); several seeds show as ``mean ± std`` (population std, as MMSA),
one seed as the bare value.

>>> print(markdown_table(["model", "MAE"], [["sgmt-tav", mean_std_text(0.30061, 0.0102, 3)]]))
| model | MAE |
|---|---|
| sgmt-tav | 0.3006 ± 0.0102 |
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..atomic import write_atomic
from ..data import MSADataset
from ..training import TrainSettings

MISSING = "–"


def number_text(value: float | None, digits: int = 4) -> str:
    """``0.55031`` -> ``"0.5503"``; a missing or non-finite value -> ``"–"``."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return MISSING
    return f"{value:.{digits}f}"


def rate_text(value: float | None) -> str:
    """A firing rate with three significant digits (an untrained or tiny model's rates can be very small)."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return MISSING
    return f"{value:.3g}"


def mean_std_text(mean: float | None, std: float | None, seeds: int, digits: int = 4) -> str:
    """``"0.5503 ± 0.0123"`` over several seeds, ``"0.5503"`` for one."""
    if mean is None or seeds <= 1 or std is None:
        return number_text(mean, digits)
    return f"{number_text(mean, digits)} ± {number_text(std, digits)}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GitHub Markdown table (``|`` in cells escaped)."""
    def cells(values: Sequence[str]) -> str:
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"

    lines = [cells(header), "|" + "---|" * len(header)]
    lines.extend(cells(row) for row in rows)
    return "\n".join(lines)


def csv_text(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV with a header line; ``None`` is an empty cell, floats keep full precision."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buffer.getvalue()


def write_csv(path: str | os.PathLike, rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Path:
    """Write ``rows`` (dicts) as CSV with ``columns``, atomically."""
    return write_atomic(path, csv_text(rows, columns))


def write_markdown(path: str | os.PathLike, text: str) -> Path:
    """Write Markdown ``text`` (ending in one newline), atomically."""
    return write_atomic(path, text.rstrip("\n") + "\n")


def metric_columns(keys: Sequence[str]) -> list[str]:
    """The CSV columns of the test metrics: ``<key>_mean``, ``<key>_std`` per key."""
    return [f"{k}_{part}" for k in keys for part in ("mean", "std")]


def outcome_row(outcome, keys: Sequence[str]) -> dict[str, Any]:
    """One flat row of a run's outcome (a :class:`~snn_msa.experiments.runs.RunOutcome`) for CSV, Markdown and JSON."""
    summary = outcome.summary()
    row: dict[str, Any] = {
        "model": outcome.run.model,
        "run": outcome.name,
        "status": outcome.status,
        "seeds": summary["seeds"],
        "valid_loss_mean": summary["valid_loss"]["mean"],
        "valid_loss_std": summary["valid_loss"]["std"],
    }
    for key in keys:
        row[f"{key}_mean"] = summary["test"]["mean"].get(key)
        row[f"{key}_std"] = summary["test"]["std"].get(key)
    row.update({
        "firing_rate_mean": summary["firing_rate"]["mean"],
        "firing_rate_std": summary["firing_rate"]["std"],
        "best_epoch_mean": summary["best_epoch"],
        "error": outcome.error,
    })
    return row


def data_fields(dataset: MSADataset, seeds: Sequence[int]) -> dict[str, Any]:
    """What every experiment's result says about the runs behind it: the data's profile (under ``dataset``, the
    key results.json uses too), its source, whether it is synthetic, and the seeds."""
    return {"dataset": dataset.profile.name, "data": dataset.source, "synthetic": bool(dataset.is_synthetic),
            "seeds": list(seeds)}


def shaped_data(dataset: MSADataset) -> str:
    """How a figure's title names the data: ``"CH-SIMS-shaped synthetic data"``."""
    return f"{dataset.profile.title}-shaped {'synthetic ' if dataset.is_synthetic else ''}data"


def settings_lines(base: TrainSettings, dataset: MSADataset, seeds: Sequence[int],
                   recipes: dict[str, str] | None = None) -> list[str]:
    """What every table says about the runs behind it: data, seeds, recipe, shared model overrides.

    ``recipes`` (model -> recipe text) lists each model's own recipe where the models do not share one.
    """
    recipe = base.recipe(dataset.profile.name)
    synthetic = dataset.is_builtin or dataset.is_synthetic
    data = f"{dataset.source} ({dataset.profile.title} format, train/valid/test {dataset.sizes_text()})"
    lines = [f"- Data: {data}" + (": SYNTHETIC, so the numbers only show that the pipeline works" if synthetic else "")]
    lines.append(f"- Seeds: {', '.join(map(str, seeds))} ({len(seeds)} seed{'s' if len(seeds) != 1 else ''}; "
                 + ("mean ± population std over seeds" if len(seeds) > 1 else "one seed, so no std") + ")")
    if recipes and len(set(recipes.values())) > 1:
        own = "; ".join(f"{model}: {text}" for model, text in recipes.items())
        lines.append(f"- Recipe: Adam, each model's card recipe for this data set ({own}), up to {recipe.max_epochs} "
                     f"epochs, early stopping on the validation loss (patience {recipe.patience}), test metrics of the "
                     "best epoch")
    else:
        lines.append(f"- Recipe: Adam lr {recipe.lr:g}, batch {recipe.batch_size}, up to {recipe.max_epochs} epochs, "
                     f"early stopping on the validation loss (patience {recipe.patience}), test metrics of the best epoch")
    if base.model_overrides:
        shared = ", ".join(f"{k}={v}" for k, v in sorted(base.model_overrides.items()))
        lines.append(f"- Model overrides shared by every run: {shared}")
    return lines


def count_text(value: float | None) -> str:
    """A count with thousands separators: ``1873701`` -> ``"1,873,701"``; missing -> ``"–"``."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return MISSING
    return f"{value:,.0f}"


def energy_text(pj: float | None) -> str:
    """Energy per sample in a readable unit: ``"512.0 pJ"``, ``"25.00 nJ"``, ``"3.100 µJ"``, ``"1.200 mJ"``."""
    if pj is None or not math.isfinite(pj):
        return MISSING
    for scale, unit, digits in ((1e9, "mJ", 3), (1e6, "µJ", 3), (1e3, "nJ", 2)):
        if abs(pj) >= scale:
            return f"{pj / scale:.{digits}f} {unit}"
    return f"{pj:.1f} pJ"


def models_markdown(rows: Sequence[dict[str, Any]], keys: Sequence[str], *, first: str = "model",
                    extra: Sequence[tuple[str, Any]] = (), paper_label: str = "paper") -> str:
    """One "ours" line per row (mean ± std over seeds), each followed by the paper's line when it has numbers.

    Args:
        rows: flat rows with ``label``, ``<key>_mean``/``_std``, ``seeds``,
            ``firing_rate_mean``, ``status`` and ``paper`` (``{key: value}``, may be empty).
        keys: the metric columns.
        first: the header of the label column.
        extra: ``(header, row -> text)`` columns after the firing rate (left blank on paper lines).
        paper_label: the source column's text on paper lines.
    """
    header = [first, "source"] + list(keys) + ["firing rate"] + [h for h, _ in extra]
    body = []
    for row in rows:
        if row["status"] == "failed":
            ours = ["failed"] + [""] * (len(keys) - 1) + [""]
        else:
            ours = [mean_std_text(row.get(f"{k}_mean"), row.get(f"{k}_std"), row["seeds"]) for k in keys]
            ours.append(rate_text(row.get("firing_rate_mean")))
        body.append([row["label"], "ours"] + ours + [fn(row) for _, fn in extra])
        paper = row.get("paper") or {}
        if paper:
            body.append(["", paper_label] + [number_text(paper.get(k)) for k in keys] + [""] + [""] * len(extra))
    return markdown_table(header, body)

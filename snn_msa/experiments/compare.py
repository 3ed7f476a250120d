"""A comparison of zoo models: a Table 1/2-style table with each model's energy per sample.

Every model trains (or is reused) with the same seeds, data, recipe and model
overrides. The table holds the data set's metric columns (mean ± std over
seeds), the mean firing rate and the estimated energy per sample from
:func:`snn_msa.energy.energy_report`, counted with the first seed's trained
weights on the first ``energy_samples`` test samples. On the paper's data sets
(CH-SIMS v2, CMU-MOSEI) the paper's numbers stand beside ours. Writes
``DIR/compare.csv`` and ``DIR/compare.md``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from ..metrics import METRIC_KEYS, metric_family
from ..training import TrainSettings
from .errors import ExperimentError
from .paper import paper_numbers, paper_source
from .study import DEFAULT_HEARTBEAT
from .runs import Echo, Run, RunOutcome, execute_runs, load_experiment_data
from .tables import (
    energy_text,
    metric_columns,
    models_markdown,
    outcome_row,
    settings_lines,
    write_atomic,
    write_csv,
    write_markdown,
)

DEFAULT_MODELS = ("sgmt-tav", "sgmt-tav-ann")
ENERGY_SAMPLES = 32


def run_comparison(
    models: Sequence[str],
    base: TrainSettings,
    out: str | os.PathLike,
    *,
    dataset=None,
    jobs: int = 1,
    storage: str | None = None,
    study: str | None = None,
    heartbeat: int = DEFAULT_HEARTBEAT,
    energy_samples: int = ENERGY_SAMPLES,
    verbose: bool = False,
    echo: Echo | None = None,
) -> dict[str, Any]:
    """Train (or reuse) each model, count its energy per sample, and write ``compare.csv`` and ``compare.md``.

    Args:
        models: zoo entries, in table order.
        base: what every run shares: data, seeds, epochs, recipe, device and model
            overrides (its ``model`` is replaced).
        out: the experiment folder; runs go to ``out/runs/<name>``.
        dataset: the loaded data (default: loaded from ``base``).
        jobs: local worker processes sharing the study (1: this process works).
        storage: the study's storage: a journal file path or a database URL
            (default: the journal file ``out/study.journal``).
        study: the study's name (default: the name of ``out``).
        heartbeat: seconds between a worker's heartbeats; a trial silent for 3 times
            as long is taken over by another worker.
        energy_samples: test samples the energy count averages over (0: no energy column).
        verbose: show the trainer's epoch lines.
        echo: where progress lines go (``None``: nowhere).

    Returns:
        ``{"rows": [...], "files": {...}, ...}``, one row per model.
    """
    models = list(models)
    if not models:
        raise ExperimentError("give at least one model to compare, for example --models sgmt-tav,sgmt-tav-ann.")
    if isinstance(energy_samples, bool) or not isinstance(energy_samples, int) or energy_samples < 0:
        raise ExperimentError(f"energy samples must be an integer >= 0 (0 leaves energy out), got {energy_samples!r}.")
    say = echo or (lambda line: None)
    dataset = load_experiment_data(base, dataset)
    profile = dataset.profile.name
    keys = METRIC_KEYS[metric_family(profile)]
    outcomes = execute_runs([Run(m) for m in models], base, out, dataset=dataset, jobs=jobs, storage=storage,
                            study=study, heartbeat=heartbeat, kind="compare", verbose=verbose, echo=echo)

    rows, notes = [], []
    for outcome in outcomes:
        paper = paper_numbers(outcome.run.model, profile)
        row = {"label": outcome.run.model, **outcome_row(outcome, keys), "paper": paper}
        row.update({f"{k}_paper": paper.get(k) for k in keys})
        energy = {"energy_pj": None, "side": None, "samples": None}
        if energy_samples and outcome.status != "failed":
            energy = energy_per_sample(outcome, base.data, energy_samples)
            if energy.get("note"):
                notes.append(f"{outcome.run.model}: {energy['note']}")
            say(f"{outcome.name}: energy {energy_text(energy['energy_pj'])} per sample"
                + (" (reused)" if energy.get("reused") else ""))
        row.update({"energy_pj_per_sample": energy["energy_pj"], "energy_side": energy["side"],
                    "energy_samples": energy["samples"]})
        rows.append(row)

    out = Path(out).expanduser()
    files = {"csv": str(out / "compare.csv"), "md": str(out / "compare.md")}
    columns = (["model", "seeds", "valid_loss_mean", "valid_loss_std"] + metric_columns(keys)
               + ["firing_rate_mean", "firing_rate_std", "best_epoch_mean", "energy_pj_per_sample", "energy_side",
                  "energy_samples"] + [f"{k}_paper" for k in keys] + ["status", "run", "error"])
    write_csv(files["csv"], rows, columns)
    text = compare_markdown(rows, keys, base, dataset, profile, energy_samples, notes)
    write_markdown(files["md"], text)
    return {
        "kind": "compare",
        "models": models,
        "dataset": profile,
        "data": dataset.source,
        "synthetic": bool(dataset.is_synthetic),
        "seeds": list(base.seeds),
        "metric_keys": keys,
        "energy_samples": energy_samples,
        "rows": rows,
        "files": files,
        "markdown": text,
    }


def compare_markdown(rows, keys, base, dataset, profile, energy_samples, notes) -> str:
    """``compare.md``: how the models ran, then the table with energy and, on the paper's data, the paper's lines."""
    lines = ["# Model comparison", "", *settings_lines(base, dataset, base.seeds)]
    if energy_samples:
        lines.append(f"- Energy per sample: `snn-msa energy` on the first {energy_samples} test samples with each "
                     "model's first-seed best weights (45 nm: 0.9 pJ per AC, 4.6 pJ per MAC; docs/energy.md)")
    if any(r["paper"] for r in rows):
        lines.append(f"- Paper lines: the published numbers ({paper_source(profile)}), from the zoo cards"
                     + ("; this data is synthetic, so they are not comparable" if dataset.is_synthetic else ""))
    extra = [("energy / sample", lambda r: energy_text(r["energy_pj_per_sample"]))] if energy_samples else []
    lines += ["", models_markdown(rows, keys, extra=extra)]
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines)


def energy_per_sample(outcome: RunOutcome, data: str | None, samples: int) -> dict[str, Any]:
    """The model's energy per sample (pJ) from the energy report on its first seed's best weights.

    The result is kept in ``<run>/energy-<samples>.json`` and reused while the
    checkpoint is unchanged. A spiking model's number is the report's ``snn``
    total; a non-spiking twin's is the ``ann`` total.
    """
    from ..data import DataError
    from ..energy import EnergyError, energy_report
    from ..training import TrainingError

    checkpoints = outcome.summary()["checkpoints"]
    checkpoint = Path(checkpoints[0])
    cache = outcome.folder / f"energy-{samples}.json"
    stamp = {"checkpoint": checkpoint.name, "seed_folder": checkpoint.parent.name, "samples": samples}
    if checkpoint.is_file():
        st = checkpoint.stat()
        stamp.update({"mtime_ns": st.st_mtime_ns, "size": st.st_size})
    try:
        kept = json.loads(cache.read_text(encoding="utf-8"))
        if kept.get("stamp") == stamp:
            return {**kept["energy"], "reused": True}
    except (OSError, ValueError, AttributeError, KeyError):
        pass
    try:
        report = energy_report(checkpoint=str(checkpoint), data=data, samples=samples)
    except (EnergyError, DataError, TrainingError) as error:
        return {"energy_pj": None, "side": None, "samples": None, "note": f"no energy count: {error}"}
    name = outcome.run.model
    side = "snn" if report["model"] == name else "ann" if report["twin"] == name else "snn"
    energy = {"energy_pj": report["totals"][side]["energy_pj"], "side": side, "samples": report["data"]["samples"]}
    write_atomic(cache, json.dumps({"stamp": stamp, "energy": energy}, indent=2) + "\n")
    return energy

"""A comparison of zoo models in the layout of the paper's Table 1 (Table 2 on MOSI/MOSEI-shaped data).

Every model trains (or is reused) with the same seeds and data, each with its
own card's recipe for the data set (MMSA's published one for the baselines)
unless the run overrides it. The table holds every MMSA metric of the data set
(mean ± std over seeds), the mean firing rate, the parameters, and the energy
per sample from :func:`snn_msa.energy.energy_report` (45 nm and memory-aware,
with the accumulates and multiply-accumulates behind them), counted with the
first seed's trained weights on the first ``energy_samples`` test samples. On
the paper's data sets (CH-SIMS v2, CMU-MOSEI) the paper's published row stands
under each model whose card has one. Writes ``DIR/compare.csv`` and ``DIR/compare.md``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from ..data import MSADataset
from ..metrics import METRIC_KEYS, metric_family
from ..registry import create_model
from ..training import TrainSettings
from .errors import ExperimentError
from .paper import paper_fields, paper_line
from .study import DEFAULT_HEARTBEAT
from .runs import Echo, Run, RunOutcome, execute_runs, load_experiment_data
from .tables import (
    count_text,
    data_fields,
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
ENERGY_CACHE_FORMAT = 2  # bump when energy_per_sample returns other fields
NO_ENERGY = {"energy_pj": None, "memory_pj": None, "ac": None, "mac": None, "side": None, "samples": None}
ENERGY_COLUMNS = ("energy_pj_per_sample", "energy_memory_pj_per_sample", "ac_per_sample", "mac_per_sample",
                  "energy_side", "energy_samples")


def parameters_on(model: str, overrides: dict[str, Any], dataset: MSADataset) -> int:
    """Parameters of ``model`` as the runs build it: the data's dims and profile, the shared overrides."""
    built = create_model(model, dataset=dataset.profile.name, feature_dims=dataset.feature_dims, **overrides)
    return sum(p.numel() for p in built.parameters())


def check_shared_overrides(models: Sequence[str], overrides: dict[str, Any], feature_dims) -> None:
    """Refuse, before anything trains, model overrides that some of ``models`` do not take (SGMT's
    ``scale1`` means nothing to MulT), naming the models and what to do."""
    if not overrides:
        return
    refused = []
    for model in models:
        try:
            create_model(model, feature_dims=feature_dims, **overrides)
        except ValueError:
            refused.append(model)
    if refused:
        shared = ", ".join(f"{k}={v}" for k, v in sorted(overrides.items()))
        raise ExperimentError(f"{', '.join(refused)} cannot take the shared model overrides ({shared}); compare them "
                              "in a run without those options, or leave them out of --models.")


def run_comparison(
    models: Sequence[str],
    base: TrainSettings,
    out: str | os.PathLike,
    *,
    dataset: MSADataset | None = None,
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
    check_shared_overrides(models, base.model_overrides, dataset.feature_dims)
    outcomes = execute_runs([Run(m) for m in models], base, out, dataset=dataset, jobs=jobs, storage=storage,
                            study=study, heartbeat=heartbeat, kind="compare", verbose=verbose, echo=echo)

    rows, notes = [], []
    for outcome in outcomes:
        row = {"label": outcome.run.model, **outcome_row(outcome, keys),
               **paper_fields(outcome.run.model, profile, keys),
               "parameters": parameters_on(outcome.run.model, base.model_overrides, dataset)}
        energy = dict(NO_ENERGY)
        if energy_samples and outcome.status != "failed":
            energy = energy_per_sample(outcome, base.data, energy_samples)
            if energy.get("note"):
                notes.append(f"{outcome.run.model}: {energy['note']}")
            say(f"{outcome.name}: energy {energy_text(energy['energy_pj'])} per sample"
                + (" (reused)" if energy.get("reused") else ""))
        row.update(dict(zip(ENERGY_COLUMNS, (energy["energy_pj"], energy["memory_pj"], energy["ac"], energy["mac"],
                                             energy["side"], energy["samples"]))))
        rows.append(row)

    out = Path(out).expanduser()
    files = {"csv": str(out / "compare.csv"), "md": str(out / "compare.md")}
    columns = (["model", "seeds", "valid_loss_mean", "valid_loss_std"] + metric_columns(keys)
               + ["firing_rate_mean", "firing_rate_std", "best_epoch_mean", "parameters", *ENERGY_COLUMNS]
               + [f"{k}_paper" for k in keys] + ["recipe", "status", "run", "error"])
    for row, outcome in zip(rows, outcomes):
        row["recipe"] = base.with_changes(model=outcome.run.model).recipe(profile).describe()
    write_csv(files["csv"], rows, columns)
    text = compare_markdown(rows, keys, base, dataset, energy_samples, notes)
    write_markdown(files["md"], text)
    return {
        "kind": "compare",
        "models": models,
        **data_fields(dataset, base.seeds),
        "metric_keys": keys,
        "energy_samples": energy_samples,
        "rows": rows,
        "files": files,
        "markdown": text,
    }


def compare_markdown(rows, keys, base: TrainSettings, dataset: MSADataset, energy_samples: int, notes) -> str:
    """``compare.md``: how the models ran, then the table with energy and, on the paper's data, the paper's lines."""
    lines = ["# Model comparison", "", *settings_lines(base, dataset, base.seeds, recipes={r["label"]: r["recipe"] for r in rows})]
    if energy_samples:
        lines.append(f"- Energy per sample: `snn-msa energy` on the first {energy_samples} test samples with each "
                     "model's first-seed best weights (45 nm: 0.9 pJ per AC, 4.6 pJ per MAC; memory-aware: Lemaire "
                     "et al. 2022, weights and activations moved as well; docs/energy.md)")
    if any(r["paper"] for r in rows):
        lines.append(paper_line(dataset))
    extra = [("parameters", lambda r: count_text(r["parameters"]))]
    if energy_samples:
        extra += [("energy / sample (45 nm)", lambda r: energy_text(r["energy_pj_per_sample"])),
                  ("energy / sample (memory-aware)", lambda r: energy_text(r["energy_memory_pj_per_sample"])),
                  ("ACs / sample", lambda r: count_text(r["ac_per_sample"])),
                  ("MACs / sample", lambda r: count_text(r["mac_per_sample"]))]
    lines += ["", models_markdown(rows, keys, extra=extra)]
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines)


def energy_per_sample(outcome: RunOutcome, data: str | None, samples: int) -> dict[str, Any]:
    """The model's energy per sample (pJ, 45 nm and memory-aware) and its ACs and MACs per sample, from the
    energy report on its first seed's best weights.

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
    stamp = {"format": ENERGY_CACHE_FORMAT, "checkpoint": checkpoint.name, "seed_folder": checkpoint.parent.name,
             "samples": samples}
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
        return {**NO_ENERGY, "note": f"no energy count: {error}"}
    name = outcome.run.model
    side = "snn" if report["model"] == name else "ann" if report["twin"] == name else "snn"
    totals = report["totals"][side]
    energy = {"energy_pj": totals["energy_pj"], "memory_pj": report["memory_aware"][side]["energy_pj"],
              "ac": totals["ac"], "mac": totals["mac"], "side": side, "samples": report["data"]["samples"]}
    write_atomic(cache, json.dumps({"stamp": stamp, "energy": energy}, indent=2) + "\n")
    return energy

"""The modality ablation: the paper's Table 3 on any data.

sgmt-tav against its two-modality entries sgmt-av, sgmt-tv and sgmt-ta (the
dropped modality's network, head and loss term removed), with the same seeds,
data, recipe and model overrides. Writes ``DIR/ablation.csv`` and
``DIR/ablation.md``; on CH-SIMS v2 the paper's numbers stand beside ours.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..data import MSADataset
from ..metrics import METRIC_KEYS, metric_family
from ..training import TrainSettings
from .paper import paper_fields, paper_line
from .study import DEFAULT_HEARTBEAT
from .runs import Echo, Run, execute_runs, load_experiment_data
from .tables import (
    data_fields,
    metric_columns,
    models_markdown,
    outcome_row,
    settings_lines,
    write_csv,
    write_markdown,
)

# The paper's row order (Table 3): the three pairs, then the full model.
ABLATION = (("sgmt-av", "A+V"), ("sgmt-tv", "T+V"), ("sgmt-ta", "T+A"), ("sgmt-tav", "T+A+V"))


def run_ablation(
    base: TrainSettings,
    out: str | os.PathLike,
    *,
    dataset: MSADataset | None = None,
    jobs: int = 1,
    storage: str | None = None,
    study: str | None = None,
    heartbeat: int = DEFAULT_HEARTBEAT,
    verbose: bool = False,
    echo: Echo | None = None,
) -> dict[str, Any]:
    """Train (or reuse) the four entries of Table 3 and write ``ablation.csv`` and ``ablation.md`` in ``out``.

    Args:
        base: what every run shares: data, seeds, epochs, recipe, device and model
            overrides such as ``scale1``, ``strength`` or ``d_model`` (its ``model`` is replaced).
        out: the experiment folder; runs go to ``out/runs/<name>``.
        dataset: the loaded data (default: loaded from ``base``).
        jobs: local worker processes sharing the study (1: this process works).
        storage: the study's storage: a journal file path or a database URL
            (default: the journal file ``out/study.journal``).
        study: the study's name (default: the name of ``out``).
        heartbeat: seconds between a worker's heartbeats; a trial silent for 3 times
            as long is taken over by another worker.
        verbose: show the trainer's epoch lines.
        echo: where progress lines go (``None``: nowhere).

    Returns:
        ``{"rows": [...], "files": {...}, ...}``, one row per entry in the paper's order.
    """
    dataset = load_experiment_data(base, dataset)
    profile = dataset.profile.name
    keys = METRIC_KEYS[metric_family(profile)]
    runs = [Run(model, {}, label) for model, label in ABLATION]
    outcomes = execute_runs(runs, base, out, dataset=dataset, jobs=jobs, storage=storage, study=study,
                            heartbeat=heartbeat, kind="ablate", verbose=verbose, echo=echo)
    rows = [{"label": outcome.run.label, **outcome_row(outcome, keys),
             **paper_fields(outcome.run.model, profile, keys)} for outcome in outcomes]

    out = Path(out).expanduser()
    files = {"csv": str(out / "ablation.csv"), "md": str(out / "ablation.md")}
    columns = (["label", "model", "seeds", "valid_loss_mean", "valid_loss_std"] + metric_columns(keys)
               + ["firing_rate_mean", "firing_rate_std", "best_epoch_mean"] + [f"{k}_paper" for k in keys]
               + ["status", "run", "error"])
    write_csv(files["csv"], rows, columns)
    has_paper = any(r["paper"] for r in rows)
    lines = ["# Modality ablation (the paper's Table 3)", "", *settings_lines(base, dataset, base.seeds),
             "- Models: " + ", ".join(f"{label} = `{model}`" for model, label in ABLATION)
             + " (a pair drops the third modality's network, head and loss term)"]
    if has_paper:
        lines.append(paper_line(dataset, "ablation"))
    lines += ["", models_markdown(rows, keys, first="modalities")]
    text = "\n".join(lines)
    write_markdown(files["md"], text)
    return {
        "kind": "ablation",
        **data_fields(dataset, base.seeds),
        "metric_keys": keys,
        "rows": rows,
        "files": files,
        "markdown": text,
    }

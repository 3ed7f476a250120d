"""A TPE search over scale1 and strength (``snn-msa grid --sampler tpe``), for users who tune on new data.

Where the grid walks fixed values, the search asks Optuna's ``TPESampler``
for ``trials`` points in two ranges:

- ``scale1`` log-uniform on [low, high] (low > 0): the paper's values 0.5 to 3
  are a factor apart, not a step apart;
- ``strength`` uniform on [low, high] (low >= 0): the paper's values include 0.

**One trial is one point (scale1, strength), trained on every seed** of the
experiment, each seed in its own folder ``DIR/runs/<name>_seed-<seed>`` as in the
grid. The trial's value is the mean over seeds of each seed's best validation
loss (the MAE of head M that early stopping minimises): TPE models one number
per point, and the mean over seeds is the number the table selects by. With one
seed this is the grid's one trial per (run, seed). The test split plays no part.

The workers, storage, heartbeats and ``jobs`` are the grid's (:mod:`.worker`,
:mod:`.study`): a killed worker's trial is failed when its heartbeat stops and a
copy with the same point queued; an interrupted or refused trial's point is
queued again by the next command. A worker that is handed a point another trial
holds, or a trial beyond the ``trials`` wanted (two workers that ask at once),
stands down without training. The study records the sampler, the ranges and the
sampler's seed; the number of trials is not part of it, so the same command with
a larger ``trials`` continues the search.

The sampler's seed is the experiment's first training seed: one worker on a
fresh study draws the same points every time (Optuna's ``TPESampler(seed=...)``;
local worker ``i`` of ``jobs`` uses ``seed + i`` so that workers do not propose
the same points). Several workers, or a search continued after an interruption,
draw other points: TPE reads the trials finished so far, in whatever order they
finished.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..data import MSADataset
from ..training import TrainSettings
from ..training.data_source import data_spec
from .errors import ExperimentError
from .grid import metrics_on, select_best
from .plots import search_figure
from .runs import Run, RunOutcome, check_jobs, combine_seeds, default_study_name, load_experiment_data, plan_workers
from .runs import read_results, shared_identity
from .study import DEFAULT_HEARTBEAT, Heartbeat, describe_storage, open_storage, open_study
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
from .trials import RESULT_FAILURE, is_result, trial_folder
from .worker import Echo, StudyJob, finish_trial, run_local_workers, run_worker, train_seed

SEARCHED = ("scale1", "strength")
PAPER_SCALE1_RANGE = (0.5, 3.0)
PAPER_STRENGTH_RANGE = (0.0, 0.1)
DEFAULT_TRIALS = 20
SELECTION = "lowest validation loss (MAE of head M at each seed's best epoch, mean over seeds)"
STOOD_DOWN = "stood_down"  # user attribute of a trial that did not train: "duplicate" or "surplus"


@dataclass(frozen=True)
class SearchSpace:
    """The ranges searched: ``scale1`` log-uniform, ``strength`` uniform, each ``(low, high)``."""

    scale1: tuple[float, float] = PAPER_SCALE1_RANGE
    strength: tuple[float, float] = PAPER_STRENGTH_RANGE

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale1", check_range("--scale1", self.scale1, positive=True))
        object.__setattr__(self, "strength", check_range("--strength", self.strength, positive=False))

    def suggest(self, trial) -> tuple[float, float]:
        """The trial's point: from TPE, or the one a queued trial carries."""
        return (trial.suggest_float("scale1", *self.scale1, log=True),
                trial.suggest_float("strength", *self.strength))

    def as_dict(self) -> dict[str, Any]:
        """The ranges as the study records them."""
        return {"scale1": {"low": self.scale1[0], "high": self.scale1[1], "scale": "log"},
                "strength": {"low": self.strength[0], "high": self.strength[1], "scale": "uniform"}}


def check_range(name: str, bounds: Sequence[float], *, positive: bool) -> tuple[float, float]:
    """``(low, high)`` as floats: finite, low < high, low > 0 (``positive``, for a log scale) or low >= 0.

    >>> check_range("--strength", (0, 0.1), positive=False)
    (0.0, 0.1)
    """
    bounds = tuple(bounds)
    example = f"{name} {'0.25:3' if positive else '0:0.1'}"
    if len(bounds) != 2:
        raise ExperimentError(f"{name} takes a range LOW:HIGH with --sampler tpe, for example {example}.")
    for value in bounds:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ExperimentError(f"{name} takes finite numbers, got {value!r}.")
    low, high = float(bounds[0]), float(bounds[1])
    if positive and low <= 0:
        raise ExperimentError(f"{name}'s low end must be > 0 (it is searched on a log scale), got {low:g}; "
                              f"for example {example}.")
    if low < 0:
        raise ExperimentError(f"{name}'s low end must be >= 0, got {low:g}; for example {example}.")
    if low >= high:
        raise ExperimentError(f"{name}'s range must have LOW < HIGH, got {low:g}:{high:g}; for example {example}.")
    return low, high


def check_trials(trials: Any) -> int:
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ExperimentError(f"--trials must be a whole number >= 1 (points to train), got {trials!r}.")
    return trials


@dataclass(frozen=True)
class SearchJob(StudyJob):
    """What a search worker needs; picklable, so a spawned process gets it whole.

    Attributes:
        storage, out, study, heartbeat, identity: as :class:`~.worker.StudyJob`'s.
        model: the zoo entry searched.
        space: the ranges.
        trials: the points wanted (trials with a result).
        sampler_seed: the TPE sampler's seed of worker 0.
        base, spec, verbose: as :class:`~.worker.WorkerJob`'s.
    """

    model: str
    space: SearchSpace
    trials: int
    sampler_seed: int
    base: TrainSettings
    spec: dict[str, Any]
    verbose: bool = False

    def run(self, point: tuple[float, float]) -> Run:
        return Run(self.model, dict(zip(SEARCHED, point)), searched=SEARCHED)


def tpe_sampler(seed: int, worker: int = 0):
    """Optuna's ``TPESampler`` seeded ``seed + worker`` (its first 10 points are random, Optuna's default)."""
    from optuna.samplers import TPESampler

    return TPESampler(seed=seed + worker)


def trial_point(trial) -> tuple[float, float] | None:
    """A trial's (scale1, strength), from its parameters or the ones a queued trial will get; None if not set yet."""
    params = trial.params or trial.system_attrs.get("fixed_params") or {}
    if not all(name in params for name in SEARCHED):
        return None
    return tuple(float(params[name]) for name in SEARCHED)


@dataclass
class Tally:
    """The search's trials by state (trials that stood down are left out).

    Attributes:
        results: trials with a result, by number.
        held: points held by a result, a running or a queued trial.
        running: running trials; ``waiting``: queued ones.
        abandoned: points whose trials all failed without a result (errors,
            interruptions, stale beyond the retries), with the last such trial.
    """

    results: list
    held: set
    running: int
    waiting: int
    abandoned: dict

    def busy(self) -> int:
        return len(self.results) + self.running + self.waiting


def tally(trials: Sequence[Any]) -> Tally:
    from optuna.trial import TrialState

    results, held, abandoned = [], set(), {}
    running = waiting = 0
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.user_attrs.get(STOOD_DOWN):
            continue
        point = trial_point(trial)
        if is_result(trial):
            results.append(trial)
        elif trial.state == TrialState.RUNNING:
            running += 1
        elif trial.state == TrialState.WAITING:
            waiting += 1
        elif trial.state == TrialState.FAIL and point is not None:
            abandoned[point] = trial
            continue
        else:
            continue
        if point is not None:
            held.add(point)
    return Tally(results, held, running, waiting, {p: t for p, t in abandoned.items() if p not in held})


def run_search(
    model: str,
    scale1_range: Sequence[float],
    strength_range: Sequence[float],
    trials: int,
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
    """Train ``trials`` TPE points (or reuse them) and write ``search.csv``, ``search.md``, ``search.png`` in ``out``.

    Args:
        model: the zoo entry (``scale1`` and ``strength`` are its overrides).
        scale1_range: ``(low, high)``, low > 0, searched log-uniform.
        strength_range: ``(low, high)``, low >= 0, searched uniform.
        trials: points with a result wanted (>= 1).
        base: what every trial shares (data, seeds, recipe, device, other overrides); its first seed seeds TPE.
        out, dataset, jobs, storage, study, heartbeat, verbose, echo: as :func:`~.grid.run_grid`'s.
        metric: the test metric of the figure's colour (default: the dataset's primary one).

    Returns:
        ``{"rows": [...], "best": 0 or None, "best_row": {...}, "files": {...}, ...}``; the rows are
        sorted by mean validation loss (failed trials last), each with its trial number, scale1,
        strength and the grid's columns.

    Raises:
        ExperimentError: a bad range, ``trials`` or ``jobs``; a study holding another experiment
            (other ranges, another sampler); an unreachable storage; a trial the trainer refused.
    """
    space = SearchSpace(tuple(scale1_range), tuple(strength_range))
    trials = check_trials(trials)
    check_jobs(jobs)
    say = echo or (lambda line: None)
    dataset = load_experiment_data(base, dataset)
    keys, metric = metrics_on(dataset.profile.name, metric)
    base = base.with_changes(model=model)
    spec = data_spec(dataset, base.data)
    sampler_seed = int(base.seeds[0])
    identity = {"command": "grid", "sampler": "tpe", "model": model, "ranges": space.as_dict(),
                "sampler_seed": sampler_seed, **shared_identity(base, spec)}
    name = study or default_study_name(out)
    where = describe_storage(storage, out)
    the_study = open_study(open_storage(storage, out, heartbeat), name, identity, tpe_sampler(sampler_seed), where)

    state = tally(the_study.get_trials(deepcopy=False))
    for point in state.abandoned:
        the_study.enqueue_trial(dict(zip(SEARCHED, point)))
    left = max(trials - len(state.results), 0)
    workers, threads, how = plan_workers(jobs, left, base, spec, say)
    say(f"study {name!r} in {where}: TPE search of {trials} trial(s) x {len(base.seeds)} seed(s), "
        f"{len(state.results)} with a result, {left} to train{how}")
    job = SearchJob(storage, str(out), name, heartbeat, identity, model, space, trials, sampler_seed, base, spec, verbose)
    if left and workers > 1:
        codes = run_local_workers(job, workers, threads, say, target=search_worker_main)
        if any(code != 0 for code in codes):
            say(f"worker exit codes: {', '.join(str(c) for c in codes)}")
    elif left:
        search_work(job, the_study, dataset, say)
    outcomes = collect_search(job, the_study)
    return _report(job, outcomes, dataset, keys, metric)


def search_work(job: SearchJob, study, dataset: MSADataset, say: Echo) -> int:
    """Take and train points until the study has ``job.trials`` results; return the trainings started.

    Raises:
        ExperimentError: the trainer refused a trial (the trial is failed; the next command queues its point again).
    """
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    trainings = 0
    waited = False
    while True:
        fail_stale_trials(study)
        state = tally(study.get_trials(deepcopy=False))
        if len(state.results) >= job.trials:
            return trainings
        if state.running and not state.waiting and state.busy() >= job.trials:  # the rest run in other workers
            if not waited:
                say(f"waiting for {state.running} trial(s) running in other workers")
                waited = True
            time.sleep(job.poll_seconds())
            continue
        waited = False
        trial = study.ask()
        point = reason = None
        try:
            with Heartbeat(study._storage, trial._trial_id):
                point = job.space.suggest(trial)
                reason = _stand_down(study, trial, point, job.trials)
                if reason is None:
                    outcome, detail, trained = _train_point(job, trial, point, dataset, say)
                    trainings += trained
        except BaseException:  # Ctrl-C or a crash: not a result; the next command queues the point again
            trial.set_user_attr("outcome", "interrupted")
            finish_trial(study, trial, state=TrialState.FAIL)
            raise
        if reason is not None:
            trial.set_user_attr(STOOD_DOWN, reason)
            finish_trial(study, trial, state=TrialState.FAIL)
            continue
        label = point_label(point)
        if outcome == "complete":
            finish_trial(study, trial, value=detail, say=say, label=label)
        else:
            trial.set_user_attr("outcome", outcome)
            trial.set_user_attr("error", detail)
            finish_trial(study, trial, state=TrialState.FAIL, say=say, label=label)
            if outcome == "error":
                raise ExperimentError(f"trial {trial.number} ({label}): {detail}")


def _stand_down(study, trial, point: tuple[float, float], wanted: int, tries: int = 50) -> str | None:
    """``"duplicate"`` when a lower-numbered trial holds ``point``, ``"surplus"`` when ``wanted`` lower-numbered
    trials are already taken (workers that asked at once), else None.

    A lower-numbered running trial whose point is not set yet is waited for briefly.
    """
    from optuna.trial import TrialState

    for _ in range(tries):
        unsure, ahead = False, 0
        for other in study.get_trials(deepcopy=False):
            if other.number == trial.number or other.user_attrs.get(STOOD_DOWN):
                continue
            taken = is_result(other) or other.state in (TrialState.RUNNING, TrialState.WAITING)
            if not taken:
                continue
            other_point = trial_point(other)
            if other_point is None:
                unsure = unsure or (other.state == TrialState.RUNNING and other.number < trial.number)
                continue
            if other_point == point and (is_result(other) or other.number < trial.number):
                return "duplicate"
            if is_result(other) or other.number < trial.number:
                ahead += 1
        if not unsure:
            return "surplus" if ahead >= wanted else None
        time.sleep(0.1)
    return None


def _train_point(job: SearchJob, trial, point: tuple[float, float], dataset: MSADataset, say: Echo) -> tuple[str, Any, int]:
    """Train every seed of ``point``: ``("complete", mean best validation loss, trainings)`` or a failure."""
    run = job.run(point)
    name = run.name(job.base)
    losses, trainings = [], 0
    for seed in job.base.seeds:
        head = f"[trial {trial.number}] {point_label(point)} seed {seed}"
        outcome, detail, trained = train_seed(run, name, seed, job.runs_dir, job.base, job.spec, dataset, say,
                                              head=head, verbose=job.verbose)
        trainings += trained
        if outcome != "complete":
            return outcome, detail, trainings
        losses.append(detail)
    return "complete", sum(losses) / len(losses), trainings


def point_label(point: tuple[float, float]) -> str:
    """``scale1 0.7312, strength 0.0421``."""
    return f"scale1 {point[0]:.4g}, strength {point[1]:.4g}"


def collect_search(job: SearchJob, study) -> list[tuple[int, RunOutcome]]:
    """``(trial number, outcome)`` of every trial with a result, read from the study and the seeds' ``results.json``.

    Raises:
        ExperimentError: fewer results than wanted (the error that stopped a trial, or workers
            that stopped early: rerun to continue).
    """
    from optuna.trial import TrialState

    state = tally(study.get_trials(deepcopy=False))
    if len(state.results) < job.trials:
        errors = [t.user_attrs["error"] for t in state.abandoned.values() if t.user_attrs.get("outcome") == "error"]
        if errors:
            raise ExperimentError(errors[0])
        raise ExperimentError(f"{job.trials - len(state.results)} of {job.trials} trial(s) have no result yet: the "
                              "workers stopped before the search finished. Run the same command again to continue.")
    outcomes = []
    for trial in state.results:
        point = trial_point(trial)
        run = job.run(point)
        name = run.name(job.base)
        folders = {seed: trial_folder(job.runs_dir, name, seed) for seed in job.base.seeds}
        first = folders[job.base.seeds[0]]
        if trial.state != TrialState.COMPLETE:
            outcomes.append((trial.number, RunOutcome(run, name, first, "failed", None, trial.user_attrs.get("error"),
                                                      folders)))
            continue
        per_seed = [read_results(folders[s], f"trial {trial.number} ({point_label(point)}) seed {s}")
                    for s in job.base.seeds]
        outcomes.append((trial.number, RunOutcome(run, name, first, "done", combine_seeds(per_seed), None, folders)))
    return outcomes


def sort_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by mean validation loss, lowest first; rows without one (failed) last, by trial number.

    >>> [r["trial"] for r in sort_rows([{"trial": 0, "valid_loss_mean": None}, {"trial": 1, "valid_loss_mean": 0.4},
    ...                                  {"trial": 2, "valid_loss_mean": 0.3}])]
    [2, 1, 0]
    """
    def key(row: Mapping[str, Any]) -> tuple:
        value = row.get("valid_loss_mean")
        finite = isinstance(value, (int, float)) and math.isfinite(value)
        return (not finite, value if finite else 0.0, row["trial"])

    return sorted(rows, key=key)


def _report(job: SearchJob, outcomes, dataset: MSADataset, keys: list[str], metric: str) -> dict[str, Any]:
    rows = []
    for number, outcome in outcomes:
        row = outcome_row(outcome, keys)
        rows.append({"trial": number, "scale1": outcome.run.overrides["scale1"],
                     "strength": outcome.run.overrides["strength"], **row})
    rows = sort_rows(rows)
    best = select_best(rows)
    for index, row in enumerate(rows):
        row["best"] = index == best

    out = Path(job.out).expanduser()
    files = {"csv": str(out / "search.csv"), "md": str(out / "search.md"), "png": str(out / "search.png")}
    columns = (["trial", "scale1", "strength", "seeds", "valid_loss_mean", "valid_loss_std"] + metric_columns(keys)
               + ["firing_rate_mean", "firing_rate_std", "best_epoch_mean", "best", "status", "run", "error"])
    write_csv(files["csv"], rows, columns)
    text = search_markdown(job, rows, keys, metric, best, settings_lines(job.base, dataset, job.base.seeds))
    write_markdown(files["md"], text)
    search_figure(rows, job.space, metric, best, files["png"],
                  title=f"{job.model}: TPE search on {shaped_data(dataset)}")
    return {
        "kind": "grid",
        "sampler": "tpe",
        "model": job.model,
        **data_fields(dataset, job.base.seeds),
        "trials": job.trials,
        "ranges": job.space.as_dict(),
        "sampler_seed": job.sampler_seed,
        "metric_keys": keys,
        "metric": metric,
        "selection": SELECTION,
        "rows": rows,
        "best": best,
        "best_row": rows[best] if best is not None else None,
        "files": files,
        "markdown": text,
    }


def search_markdown(job: SearchJob, rows, keys, metric: str, best: int | None, context: list[str]) -> str:
    """``search.md``: how the search ran, the best point, then every trial sorted by validation loss."""
    n = len(job.base.seeds)
    (s_lo, s_hi), (t_lo, t_hi) = job.space.scale1, job.space.strength
    lines = [f"# TPE search over scale1 and strength: {job.model}", "", *context,
             f"- Search: Optuna's TPESampler (seed {job.sampler_seed}), {len(rows)} trial(s) with a result; "
             f"scale1 log-uniform on [{s_lo:g}, {s_hi:g}], strength uniform on [{t_lo:g}, {t_hi:g}]; each trial "
             "trains every seed and its value is the mean of the seeds' best validation losses",
             f"- Selection: the best trial has the {SELECTION}; it is **bold** and marked ◀ best. "
             "The test metrics are reported, never used to choose.", ""]
    if best is None:
        lines += ["No trial finished (every run failed), so there is no best point.", ""]
    else:
        b = rows[best]
        lines += [f"Best point: scale1 = {b['scale1']:.4g}, strength = {b['strength']:.4g} (trial {b['trial']}; "
                  f"validation loss {number_text(b['valid_loss_mean'])}; test {metric} "
                  f"{mean_std_text(b[f'{metric}_mean'], b[f'{metric}_std'], n)}).", ""]
    lines += ["## Every trial, lowest validation loss first (test metrics of each seed's best epoch)", ""]
    header = ["trial", "scale1", "strength", "valid loss"] + keys + ["firing rate", "best epoch", ""]
    body = []
    for index, row in enumerate(rows):
        mark = index == best
        values = [str(row["trial"]), f"{row['scale1']:.4g}", f"{row['strength']:.4g}",
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
        lines += ["Failed trials (the loss became NaN or infinite; they count as trials and are not retried):", ""]
        lines += [f"- trial {r['trial']}, scale1 = {r['scale1']:.4g}, strength = {r['strength']:.4g}: {r['error']}"
                  for r in failed]
        lines.append("")
    lines += ["Run folders: `runs/<name>_seed-<seed>` with the full values in the name (the `run` column of "
              "search.csv).", "", "![search: the points tried and the validation loss by trial](search.png)"]
    return "\n".join(lines)


def search_worker_main(job: SearchJob, threads: int, lines, index: int) -> None:
    """A spawned search worker: open the study with TPE seeded ``sampler_seed + index``, load the data, work."""
    run_worker(job, threads, lines, tpe_sampler(job.sampler_seed, index), search_work)

"""The runs of an experiment, trained as the trials of an Optuna study; their outcomes, for the tables.

A run is one zoo model with the model overrides that set it apart (for a grid
cell, ``scale1`` and ``strength``), trained with the experiment's shared
:class:`~snn_msa.training.TrainSettings` (data, seeds, epochs, recipe). Each
(run, seed) is one trial of the experiment's study (:mod:`.trials`), trained by
whichever worker takes it (:mod:`.worker`) into ``DIR/runs/<name>_seed-<seed>/``,
the name spelled from the model and every model override, for example
``sgmt-tav_scale1-0.5_strength-0.01_seed-1111``.

:func:`execute_runs` opens (or creates) the study, queues again the trials
that an error or an interruption left without a result, runs ``jobs`` workers
until every trial has one, and reads each run's outcome back from the study
and the ``results.json`` of its seeds. Run on a finished study it trains
nothing and only reads. A trial whose folder already holds a finished run
with the same settings and data is read, not trained; a started one is
continued from its last completed epoch.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..data import MSADataset
from ..registry import create_model
from ..training import TrainSettings
from ..training.checkpoint import model_config
from ..training.data_source import data_spec, load_training_data
from ..training.results import RESULTS_FORMAT, aggregate, json_safe, mean_std
from ..training.trainer import config_changes
from .errors import ExperimentError
from .study import DEFAULT_HEARTBEAT, describe_storage, open_storage, open_study
from .trials import TrialPlan, survey, trial_folder
from .worker import WorkerJob, grid_sampler, run_local_workers, work

RUNS_FOLDER = "runs"
STATUSES = ("done", "failed")

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Run:
    """One setting of an experiment: a zoo model and the model overrides that set it apart.

    Attributes:
        model: zoo entry name.
        overrides: model keyword overrides of this run, on top of the experiment's
            shared ones (for example ``{"scale1": 0.5, "strength": 0.01}``).
        label: how tables name the run (default: the model name).
        searched: the overrides that are the study's parameters (a grid's
            ``("scale1", "strength")``); none: the model name is.
    """

    model: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None
    searched: tuple[str, ...] = ()

    def study_params(self) -> dict[str, Any]:
        """The run's parameters in the study: its searched overrides, or ``{"model": name}``."""
        if self.searched:
            return {name: self.overrides[name] for name in self.searched}
        return {"model": self.model}

    def merged_overrides(self, base: TrainSettings) -> dict[str, Any]:
        """This run's overrides first, then the experiment's shared ones not set here (sorted)."""
        own = {k: v for k, v in self.overrides.items() if v is not None}
        shared = {k: base.model_overrides[k] for k in sorted(base.model_overrides) if k not in own}
        return {**own, **shared}

    def name(self, base: TrainSettings) -> str:
        """The run's folder name, spelled from the model and every model override."""
        return run_name(self.model, self.merged_overrides(base))

    def settings(self, base: TrainSettings, folder: Path, *, resume: bool, quiet: bool) -> TrainSettings:
        """The trainer's settings of this run: ``base`` with this model, these overrides and this folder.

        TensorBoard logs, when asked for, go to ``<base.tensorboard>/<run name>`` (the trainer adds ``seed-<s>``).
        """
        board = None if base.tensorboard is None else str(Path(base.tensorboard) / self.name(base))
        return base.with_changes(model=self.model, model_overrides=self.merged_overrides(base), out=str(folder),
                                 resume=resume, overwrite=False, quiet=quiet, tensorboard=board)


@dataclass
class RunOutcome:
    """What became of one run, over its seeds.

    Attributes:
        run: the setting.
        name: its name (the seeds' folders are ``DIR/runs/<name>_seed-<seed>``).
        folder: the first seed's folder (the comparison keeps its energy count there).
        status: ``"done"`` (every seed trained) or ``"failed"`` (a seed's loss
            became NaN or infinite; ``error`` says so).
        results: the seeds' results combined (:func:`combine_seeds`; ``None`` when failed).
        error: why it failed.
        folders: seed -> its folder.
    """

    run: Run
    name: str
    folder: Path
    status: str
    results: dict[str, Any] | None = None
    error: str | None = None
    folders: dict[int, Path] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The numbers a table shows: validation loss, test metrics (mean and std over seeds), firing rate."""
        if self.results is None:
            return {"seeds": 0, "valid_loss": {"mean": None, "std": None}, "test": {"mean": {}, "std": {}},
                    "firing_rate": {"mean": None, "std": None}, "best_epoch": None, "checkpoints": []}
        summary = summarize(self.results)
        summary["checkpoints"] = [str(self.folders[s["seed"]] / f"seed-{s['seed']}" / "best.pt")
                                  for s in self.results["seeds"]]
        return summary


def run_name(model: str, overrides: Mapping[str, Any]) -> str:
    """``sgmt-tav`` + ``{"scale1": 0.5, "strength": 0.01}`` -> ``sgmt-tav_scale1-0.5_strength-0.01``.

    >>> run_name("sgmt-tav", {"scale1": 1.0, "strength": 0.025, "d_model": 16})
    'sgmt-tav_scale1-1_strength-0.025_d_model-16'
    """
    parts = [model] + [f"{key}-{_spell(value)}" for key, value in overrides.items()]
    return re.sub(r"[^A-Za-z0-9.+_-]", "_", "_".join(parts))


def _spell(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (list, tuple)):
        return "+".join(_spell(v) for v in value)
    return str(value)


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Mean and standard deviation over seeds of what a ``results.json`` (or :func:`combine_seeds`) reports.

    The validation loss is each seed's best one (the MAE of head M that chose
    its best epoch); the test metrics are those of the best epoch's weights.
    """
    seeds = results.get("seeds") or []
    v_mean, v_std = mean_std(s.get("best_valid_loss") for s in seeds)
    test = results.get("test") or {}
    rate = results.get("firing_rate") or {}
    epoch = results.get("best_epoch") or {}
    return {
        "seeds": len(seeds),
        "valid_loss": {"mean": v_mean, "std": v_std},
        "test": {"mean": dict(test.get("mean") or {}), "std": dict(test.get("std") or {})},
        "firing_rate": {"mean": rate.get("mean"), "std": rate.get("std")},
        "best_epoch": epoch.get("mean"),
    }


def combine_seeds(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's seeds (each a one-seed ``results.json``) as one results dict: mean and population std over seeds.

    >>> one = lambda s, mae: {"seeds": [{"seed": s, "best_valid_loss": mae, "test_metrics": {"MAE": mae},
    ...                                  "firing_rate": 0.1, "best_epoch": 2}]}
    >>> round(combine_seeds([one(1, 0.2), one(2, 0.4)])["test"]["mean"]["MAE"], 6)
    0.3
    """
    seeds = [results["seeds"][0] for results in per_seed]
    first = per_seed[0] if per_seed else {}
    return {
        "model": first.get("model"),
        "model_overrides": first.get("model_overrides"),
        "seeds": seeds,
        "test": aggregate([s.get("test_metrics") or {} for s in seeds]),
        "firing_rate": _mean_std_dict([s.get("firing_rate") for s in seeds]),
        "best_epoch": _mean_std_dict([s.get("best_epoch") for s in seeds]),
    }


def _mean_std_dict(values: list) -> dict[str, Any]:
    mean, std = mean_std(values)
    return {"mean": mean, "std": std, "n": len(values)}


def load_experiment_data(base: TrainSettings, dataset: MSADataset | None = None) -> MSADataset:
    """The data every run of an experiment shares: ``dataset``, or what ``base`` names (file or synthetic)."""
    return load_training_data(base, dataset)


def check_jobs(jobs: int) -> None:
    """Refuse a worker count that is not an integer >= 1."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ExperimentError(f"jobs must be an integer >= 1 (worker processes), got {jobs!r}.")


def plan_workers(jobs: int, left: int, base: TrainSettings, spec: dict[str, Any], say: Echo) -> tuple[int, int, str]:
    """Worker processes for ``left`` trainings, torch threads for each, and how the start line tells it.

    A data set given as an object (neither a file nor the built-in set) cannot reach other processes: one worker.
    """
    workers = min(jobs, max(left, 1))
    if workers > 1 and base.data is None and not spec["built_in"]:
        say("a data set given as an object (not a file) cannot be sent to worker processes: one worker")
        workers = 1
    threads = base.threads or max(1, cpu_cores() // workers)
    how = f"; {workers} worker processes of {threads} torch thread(s) each" if workers > 1 and left else ""
    return workers, threads, how


def cpu_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def default_study_name(out: str | os.PathLike) -> str:
    """The study's name when ``--study`` is not given: the experiment folder's name."""
    return Path(out).expanduser().resolve().name


def experiment_identity(kind: str, plan: TrialPlan, base: TrainSettings, spec: dict[str, Any]) -> dict[str, Any]:
    """What makes two commands the same experiment: command, runs, searched values, seeds, recipe, data.

    Device and thread count are left out: workers on a GPU and on CPUs may share a study.
    """
    shared = shared_identity(base, spec)
    return {"command": kind, "runs": list(plan.names), "seeds": shared.pop("seeds"), **shared,
            "search_space": plan.search_space()}


def shared_identity(base: TrainSettings, spec: dict[str, Any]) -> dict[str, Any]:
    """The part of an experiment's identity every run shares: seeds, recipe, shared model overrides, data."""
    recipe = {k: getattr(base, k) for k in ("epochs", "lr", "batch_size", "patience", "weight_decay", "grad_clip")}
    return {
        "seeds": list(base.seeds),
        "recipe": recipe,
        "model_overrides": dict(sorted(base.model_overrides.items())),
        "data": {"profile": spec["profile"], "fingerprints": spec["fingerprints"]},
    }


def execute_runs(
    runs: list[Run],
    base: TrainSettings,
    out: str | os.PathLike,
    *,
    dataset: MSADataset | None = None,
    jobs: int = 1,
    storage: str | None = None,
    study: str | None = None,
    heartbeat: int = DEFAULT_HEARTBEAT,
    kind: str = "runs",
    verbose: bool = False,
    echo: Echo | None = None,
) -> list[RunOutcome]:
    """Bring every (run, seed) of the study to a result with ``jobs`` workers, then read the outcomes.

    Args:
        runs: the settings, in the order the outcomes come back.
        base: what every run shares (data, seeds, epochs, recipe, device, shared
            model overrides); its ``model``, ``seeds``, ``out``, ``resume`` and ``quiet`` are replaced per trial.
        out: the experiment folder (runs in ``out/runs``; the default journal file ``out/study.journal``).
        dataset: the loaded data (default: loaded from ``base``).
        jobs: local worker processes (1: this process works).
        storage: the study's storage (:func:`~snn_msa.experiments.study.open_storage`; default the journal file).
        study: the study's name (default: the folder's name).
        heartbeat: seconds between a worker's heartbeats; a trial silent for 3 times as long is taken over.
        kind: the experiment's command (``grid``, ``ablate``, ``compare``), recorded in the study.
        verbose: show the trainer's epoch lines.
        echo: where progress lines go (``None``: nowhere).

    Raises:
        ExperimentError: bad ``jobs``, two runs with one name, a study or folder
            holding another experiment, an unreachable storage, a run the trainer
            refused, or workers that all stopped before the study finished.
    """
    check_jobs(jobs)
    say = echo or (lambda line: None)
    dataset = load_experiment_data(base, dataset)
    spec = data_spec(dataset, base.data)
    names = [run.name(base) for run in runs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ExperimentError(f"the same setting is asked for twice ({', '.join(repeated)}); list each value once.")
    plan = TrialPlan(tuple(run.study_params() for run in runs), tuple(base.seeds), tuple(names))
    identity = experiment_identity(kind, plan, base, spec)
    name = study or default_study_name(out)
    where = describe_storage(storage, out)
    the_study = open_study(open_storage(storage, out, heartbeat), name, identity, grid_sampler(plan), where)

    state = survey(plan, the_study.get_trials(deepcopy=False))
    for key in state.abandoned:
        the_study.enqueue_trial(plan.trial_params(key))
    left = len(plan.keys()) - len(state.results)
    workers, threads, how = plan_workers(jobs, left, base, spec, say)
    say(f"study {name!r} in {where}: {len(plan.keys())} trial(s) ({len(runs)} run(s) x {len(base.seeds)} seed(s)), "
        f"{len(state.results)} with a result, {left} to train{how}")
    job = WorkerJob(storage, str(out), name, heartbeat, identity, plan, tuple(runs), base, spec, verbose)
    if left and workers > 1:
        codes = run_local_workers(job, workers, threads, say)
        if any(code != 0 for code in codes):
            say(f"worker exit codes: {', '.join(str(c) for c in codes)}")
    elif left:
        work(job, the_study, dataset, say)
    return collect_outcomes(job, the_study)


def collect_outcomes(job: WorkerJob, study) -> list[RunOutcome]:
    """Each run's outcome from the study's results and its seeds' ``results.json``.

    Raises:
        ExperimentError: a (run, seed) has no result (the error that stopped it, or
            workers that stopped before the study finished: rerun to continue).
    """
    from optuna.trial import TrialState

    plan = job.plan
    state = survey(plan, study.get_trials(deepcopy=False))
    missing = [k for k in plan.keys() if k not in state.results]
    if missing:
        errors = [f"run {plan.label(k)}: {state.abandoned[k].user_attrs['error']}" for k in missing
                  if k in state.abandoned and state.abandoned[k].user_attrs.get("outcome") == "error"]
        if errors:
            raise ExperimentError(errors[0])
        raise ExperimentError(f"{len(missing)} trial(s) have no result yet ({plan.label(missing[0])}, ...): the workers "
                              "stopped before the study finished. Run the same command again to continue.")
    outcomes = []
    for index, run in enumerate(job.runs):
        name = plan.names[index]
        folders = {seed: trial_folder(job.runs_dir, name, seed) for seed in plan.seeds}
        failures = [state.results[(index, seed)] for seed in plan.seeds
                    if state.results[(index, seed)].state != TrialState.COMPLETE]
        first = folders[plan.seeds[0]]
        if failures:
            error = failures[0].user_attrs.get("error")
            outcomes.append(RunOutcome(run, name, first, "failed", None, error, folders))
            continue
        per_seed = [read_results(folders[seed], plan.label((index, seed))) for seed in plan.seeds]
        outcomes.append(RunOutcome(run, name, first, "done", combine_seeds(per_seed), None, folders))
    return outcomes


def read_results(folder: Path, label: str) -> dict[str, Any]:
    """The ``results.json`` of a trial with a result; an error that says what to do when it is gone."""
    path = folder / "results.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ExperimentError(f"{label} has a result in the study but {path} cannot be read ({error}); restore the "
                              "folder, or start the experiment again in a new --out.") from None


def finished_results(folder: Path, settings: TrainSettings, spec: dict[str, Any]) -> dict[str, Any] | None:
    """The run's ``results.json`` if it is finished with exactly these settings and data, else ``None``.

    Raises:
        ExperimentError: the folder holds a finished run on other data, or of a
            model built with other defaults (an older snn-msa); training on top of
            it would mix two runs in one folder.
    """
    path = folder / "results.json"
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # damaged: the trainer's resume rewrites it
    if not isinstance(results, dict) or results.get("format") != RESULTS_FORMAT:
        return None
    data = results.get("data") or {}
    if results.get("dataset") != spec["profile"] or data.get("fingerprints") != spec["fingerprints"]:
        then, now = f"{data.get('source')}, {results.get('dataset')}", f"{spec['source']}, {spec['profile']}"
        which = (f"other data ({then}) than this experiment ({now})" if then != now else
                 f"data of the same name ({now}) whose content differs (an edited file, or built-in synthetic data "
                 "made by another version of snn-msa)")
        raise ExperimentError(f"{folder} holds a run on {which}; give another --out, or delete that folder to "
                              "train it again.")
    stored = results.get("settings") or {}
    same = (
        results.get("model") == settings.model
        and stored.get("seeds") == list(settings.seeds)
        and results.get("recipe") == settings.recipe().as_dict()
        and json_safe(stored.get("model_overrides") or {}) == json_safe(dict(settings.model_overrides))
    )
    if not same:
        return None
    changes = config_changes(results.get("model_config"), built_config(settings, spec))
    if changes:
        raise ExperimentError(f"{folder} holds a run whose model had other settings ({'; '.join(changes)}): a "
                              "default changed since it was trained (docs/model.md, Our defaults). Give another "
                              "--out, or delete that folder to train it again.")
    return results


def built_config(settings: TrainSettings, spec: dict[str, Any]) -> dict[str, Any] | None:
    """The full config of the model the run builds now on the data of ``spec`` (defaults included)."""
    try:
        model = create_model(settings.model, dataset=spec["profile"], feature_dims=spec["feature_dims"],
                             **settings.model_overrides)
    except ValueError:
        return None  # the trainer says what is wrong with the options
    return model_config(model)


def started(folder: Path) -> bool:
    """Whether the folder holds a run the trainer can continue (seed folders or results)."""
    return folder.is_dir() and (any(folder.glob("seed-*")) or (folder / "results.json").is_file())


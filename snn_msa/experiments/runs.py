"""The runs of an experiment: one folder per setting, reused when finished, resumed when interrupted.

A run is one zoo model with the model overrides that set it apart (for a grid
cell, ``scale1`` and ``strength``), trained with the experiment's shared
:class:`~snn_msa.training.TrainSettings` (data, seeds, epochs, recipe). It lives
in ``DIR/runs/<name>/``, the name spelled from the model and every model
override, for example ``sgmt-tav_scale1-0.5_strength-0.01``. Before training,
each run is looked up there:

- **finished**: ``results.json`` records the same model, overrides, seeds,
  recipe and data (by the fingerprint of each split), so it is read, not trained;
- **started**, or finished with other seeds or epochs: the trainer continues
  it (``resume=True``): a finished seed is only tested again, an interrupted one
  continues from its last completed epoch, new seeds or more epochs extend it;
- otherwise it is trained from scratch.

An interrupted experiment therefore continues where it stopped when the same
command is run again. With ``jobs > 1`` the runs left to train go to a pool of
spawned processes; each sets ``torch.set_num_threads(max(1, cores // workers))``
so the workers do not fight over the cores, unless the shared settings name
``threads`` (``snn-msa`` passes 1, as ``snn-msa train`` does, so a result does not
depend on how many jobs trained it).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..training import NonFiniteLossError, TrainSettings, train
from ..training.data_source import data_spec, load_eval_data, load_training_data
from ..training.errors import CheckpointError
from ..training.results import RESULTS_FORMAT, mean_std
from .errors import ExperimentError

RUNS_FOLDER = "runs"
STATUSES = ("reused", "resumed", "trained", "failed")

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Run:
    """One setting of an experiment: a zoo model and the model overrides that set it apart.

    Attributes:
        model: zoo entry name.
        overrides: model keyword overrides of this run, on top of the experiment's
            shared ones (for example ``{"scale1": 0.5, "strength": 0.01}``).
        label: how tables name the run (default: the model name).
    """

    model: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None

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

        TensorBoard logs, when asked for, go to ``<base.tensorboard>/<run name>``.
        """
        board = None if base.tensorboard is None else str(Path(base.tensorboard) / self.name(base))
        return base.with_changes(model=self.model, model_overrides=self.merged_overrides(base), out=str(folder),
                                 resume=resume, overwrite=False, quiet=quiet, tensorboard=board)


@dataclass
class RunOutcome:
    """What became of one run.

    Attributes:
        run: the setting.
        name: its folder name.
        folder: ``DIR/runs/<name>``.
        status: ``"reused"`` (finished before, read as it was), ``"resumed"`` (a
            started run continued, or a finished one extended to more seeds or
            epochs), ``"trained"`` (trained from scratch now) or ``"failed"`` (the
            loss became NaN or infinite; ``error`` says so).
        results: the content of its ``results.json`` (``None`` when failed).
        error: why it failed.
        seconds: wall time spent on it now.
    """

    run: Run
    name: str
    folder: Path
    status: str
    results: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The numbers a table shows: validation loss, test metrics (mean and std over seeds), firing rate."""
        if self.results is None:
            return {"seeds": 0, "valid_loss": {"mean": None, "std": None}, "test": {"mean": {}, "std": {}},
                    "firing_rate": {"mean": None, "std": None}, "best_epoch": None, "checkpoints": []}
        return summarize(self.results, self.folder)


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


def summarize(results: dict[str, Any], folder: Path | None = None) -> dict[str, Any]:
    """Mean and standard deviation over seeds of what a ``results.json`` reports.

    The validation loss is each seed's best one (the MAE of head M that chose
    its best epoch); the test metrics are those of the best epoch's weights.
    """
    seeds = results.get("seeds") or []
    v_mean, v_std = mean_std(s.get("best_valid_loss") for s in seeds)
    test = results.get("test") or {}
    rate = results.get("firing_rate") or {}
    epoch = results.get("best_epoch") or {}
    where = Path(folder) if folder is not None else Path(results.get("settings", {}).get("out", "."))
    return {
        "seeds": len(seeds),
        "valid_loss": {"mean": v_mean, "std": v_std},
        "test": {"mean": dict(test.get("mean") or {}), "std": dict(test.get("std") or {})},
        "firing_rate": {"mean": rate.get("mean"), "std": rate.get("std")},
        "best_epoch": epoch.get("mean"),
        "checkpoints": [str(where / f"seed-{s['seed']}" / "best.pt") for s in seeds],
    }


def load_experiment_data(base: TrainSettings, dataset=None):
    """The data every run of an experiment shares: ``dataset``, or what ``base`` names (file or synthetic)."""
    return load_training_data(base, dataset)


def cpu_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def execute_runs(
    runs: list[Run],
    base: TrainSettings,
    out: str | os.PathLike,
    *,
    dataset=None,
    jobs: int = 1,
    verbose: bool = False,
    echo: Echo | None = None,
) -> list[RunOutcome]:
    """Bring every run in ``out/runs`` to finished: reuse, resume or train; in parallel with ``jobs > 1``.

    Args:
        runs: the settings, in the order the outcomes come back.
        base: what every run shares (data, seeds, epochs, recipe, device, shared
            model overrides); its ``model``, ``out``, ``resume`` and ``quiet`` are replaced per run.
        out: the experiment folder.
        dataset: the loaded data (default: loaded from ``base``).
        jobs: runs trained at once, each in its own process.
        verbose: show the trainer's epoch lines (with ``jobs > 1`` they interleave).
        echo: where progress lines go (``None``: nowhere).

    Raises:
        ExperimentError: bad ``jobs``, two runs with one name, a folder that holds
            a run on other data or with other settings.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ExperimentError(f"jobs must be an integer >= 1 (processes training at once), got {jobs!r}.")
    say = echo or (lambda line: None)
    dataset = load_experiment_data(base, dataset)
    spec = data_spec(dataset, base.data)
    runs_dir = Path(out).expanduser() / RUNS_FOLDER

    names = [run.name(base) for run in runs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ExperimentError(f"the same setting is asked for twice ({', '.join(repeated)}); list each value once.")

    outcomes: list[RunOutcome | None] = [None] * len(runs)
    pending: list[tuple[int, TrainSettings]] = []
    for index, (run, name) in enumerate(zip(runs, names)):
        folder = runs_dir / name
        probe = run.settings(base, folder, resume=False, quiet=True)
        results = finished_results(folder, probe, spec)
        if results is not None:
            outcomes[index] = RunOutcome(run, name, folder, "reused", results)
        else:
            pending.append((index, run.settings(base, folder, resume=started(folder), quiet=not verbose)))

    workers = min(jobs, len(pending))
    if workers > 1 and base.data is None and not spec["built_in"]:
        say("a data set given as an object (not a file) cannot be sent to worker processes: training one run at a time")
        workers = 1
    threads = max(1, cpu_cores() // max(workers, 1))
    reused = len(runs) - len(pending)
    how = f" in {workers} processes of {base.threads or threads} torch thread(s) each" if workers > 1 else ""
    say(f"{len(runs)} run(s) in {runs_dir}: {reused} finished before (reused), {len(pending)} to train{how}")
    for index, outcome in enumerate(outcomes):
        if outcome is not None:
            say(_line(index, len(runs), outcome))

    def finish(index: int, outcome: RunOutcome) -> None:
        outcomes[index] = outcome
        say(_line(index, len(runs), outcome))

    if workers <= 1:
        for index, settings in pending:
            if settings.resume:
                say(f"[{index + 1}/{len(runs)}] {names[index]}: continuing the run found in its folder")
            finish(index, _train_here(runs[index], names[index], settings, dataset, say if verbose else None))
    else:
        _train_in_pool(runs, names, pending, spec, base.data, workers, threads, finish)
    return [o for o in outcomes if o is not None]


def finished_results(folder: Path, settings: TrainSettings, spec: dict[str, Any]) -> dict[str, Any] | None:
    """The run's ``results.json`` if it is finished with exactly these settings and data, else ``None``.

    Raises:
        ExperimentError: the folder holds a finished run on other data; training on
            top of it would mix two data sets in one folder.
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
        and _plain(stored.get("model_overrides") or {}) == _plain(settings.model_overrides)
    )
    return results if same else None


def started(folder: Path) -> bool:
    """Whether the folder holds a run the trainer can continue (seed folders or results)."""
    return folder.is_dir() and (any(folder.glob("seed-*")) or (folder / "results.json").is_file())


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True))


def _line(index: int, total: int, outcome: RunOutcome) -> str:
    head = f"[{index + 1}/{total}] {outcome.name}"
    if outcome.status == "failed":
        return f"{head}: FAILED after {outcome.seconds:.1f} s: {outcome.error}"
    summary = outcome.summary()
    loss = summary["valid_loss"]["mean"]
    what = {"reused": "reused (finished before)", "resumed": f"resumed and finished in {outcome.seconds:.1f} s"}.get(
        outcome.status, f"trained in {outcome.seconds:.1f} s")
    return f"{head}: {what}, valid loss {'nan' if loss is None else f'{loss:.4f}'}"


def _train_here(run: Run, name: str, settings: TrainSettings, dataset, echo: Echo | None) -> RunOutcome:
    start = time.perf_counter()
    folder = Path(settings.out)
    try:
        results = train(settings, dataset, echo=(lambda line: echo(f"  {line}")) if echo else None)
    except NonFiniteLossError as error:
        return RunOutcome(run, name, folder, "failed", None, str(error), time.perf_counter() - start)
    except CheckpointError as error:
        raise ExperimentError(f"run {name}: {error}") from None
    status = "resumed" if settings.resume else "trained"
    return RunOutcome(run, name, folder, status, results, None, time.perf_counter() - start)


def _train_in_pool(runs, names, pending, spec, data_path, workers, threads, finish) -> None:
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(threads,))
    futures: dict[Future, tuple[int, TrainSettings]] = {}
    try:
        for index, settings in pending:
            futures[pool.submit(_train_in_worker, settings, spec, data_path)] = (index, settings)
        waiting = set(futures)
        while waiting:
            done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
            for future in done:
                index, settings = futures[future]
                try:
                    status, results, error, seconds = future.result()
                except BrokenProcessPool:
                    raise ExperimentError(
                        f"a worker process died while training {names[index]} (killed, out of memory, or started from "
                        "a script that cannot be re-imported); finished runs are kept: run again, or use --jobs 1."
                    ) from None
                if status == "error":
                    raise ExperimentError(f"run {names[index]}: {error}")
                finish(index, RunOutcome(runs[index], names[index], Path(settings.out), status, results, error, seconds))
    except BaseException:
        # Runs still going keep their completed epochs and are resumed next time.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


_WORKER_DATA: dict[str, Any] = {}


def _worker_data(spec: dict[str, Any], data_path: str | None, allow_nonfinite: bool = False):
    """The experiment's data, loaded again in a worker: the same file and profile, or the same synthetic set."""
    from ..data import DataError, load_dataset

    if data_path is None:
        return load_eval_data(spec)  # rebuilds the built-in synthetic data and checks its fingerprints
    dataset = load_dataset(os.path.expanduser(data_path), spec["profile"], allow_nonfinite=allow_nonfinite)
    if data_spec(dataset, data_path)["fingerprints"] != spec["fingerprints"]:
        raise DataError(f"{data_path} changed while the experiment ran; run it again.")
    return dataset


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _train_in_worker(settings: TrainSettings, spec: dict[str, Any], data_path: str | None):
    """Train one run in a worker process; the data is loaded once per process."""
    from ..data import DataError
    from ..training import TrainingError

    start = time.perf_counter()
    key = json.dumps(spec["fingerprints"], sort_keys=True)
    try:
        if key not in _WORKER_DATA:
            _WORKER_DATA.clear()
            _WORKER_DATA[key] = _worker_data(spec, data_path, settings.allow_nonfinite)
        results = train(settings, _WORKER_DATA[key])
    except NonFiniteLossError as error:
        return "failed", None, str(error), time.perf_counter() - start
    except (TrainingError, DataError) as error:
        return "error", None, str(error), time.perf_counter() - start
    return ("resumed" if settings.resume else "trained"), results, None, time.perf_counter() - start

"""Workers: processes that take the experiment's trials from the study and train them until all have a result.

Any number of workers, on any machines, started with the same command and
storage, share one study. Each loops:

1. fail the stale trials (a worker killed mid-trial stops its heartbeat; its
   trial is failed and a copy queued, see :mod:`.study`);
2. survey the study (:func:`.trials.survey`): stop when nothing runs, waits or
   is left to start; wait while the only work left is held by other workers (so
   that a trial of a worker that dies is still taken over);
3. ``study.ask()``: a queued trial first, else the next (run, seed) of the
   ``GridSampler``; then stand down if another trial holds the same (run, seed)
   (the sampler can hand one out twice when workers ask at the same moment);
4. train it with a heartbeat, into ``runs/<name>_seed-<seed>``: a folder whose
   ``results.json`` already matches is read, not trained; a started one is
   continued from its last completed epoch;
5. ``study.tell()``: the seed's best validation loss, or a failure.

``--jobs N`` starts N such workers as local processes on the same storage;
``--jobs 1`` runs one in the command's own process.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_mod
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..data import MSADataset
from ..training import NonFiniteLossError, TrainSettings, train
from ..training.data_source import data_spec, load_eval_data
from ..training.errors import CheckpointError
from .errors import ExperimentError
from .study import Heartbeat
from .trials import RESULT_FAILURE, Key, TrialPlan, survey, trial_folder, trial_key

Echo = Callable[[str], None]
POLL_SECONDS = 5.0


@dataclass(frozen=True)
class StudyJob:
    """What every worker of a study needs, grid or search; picklable, so a spawned process gets it whole.

    Attributes:
        storage: ``--storage`` (``None``: the journal file in ``out``).
        out: the experiment folder.
        study: the study's name.
        heartbeat: seconds between heartbeats.
        identity: the experiment's identity (checked against the study's).
    """

    storage: str | None
    out: str
    study: str
    heartbeat: int
    identity: dict[str, Any]

    @property
    def runs_dir(self) -> Path:
        return Path(self.out).expanduser() / "runs"

    def poll_seconds(self) -> float:
        """How often a worker with nothing to do looks again: often enough to take over a stale trial soon."""
        return min(POLL_SECONDS, self.heartbeat / 2)


@dataclass(frozen=True)
class WorkerJob(StudyJob):
    """What a worker needs to join an experiment of fixed runs (a grid, an ablation, a comparison).

    Attributes:
        storage, out, study, heartbeat, identity: as :class:`StudyJob`'s.
        plan: the (run, seed) trials.
        runs: the runs, in the plan's order.
        base: the shared settings (its ``seeds`` are replaced per trial).
        spec: the data's description (profile, fingerprints) from :func:`~snn_msa.training.data_source.data_spec`.
        verbose: show the trainer's epoch lines.
    """

    plan: TrialPlan
    runs: tuple
    base: TrainSettings
    spec: dict[str, Any]
    verbose: bool = False


def work(job: WorkerJob, study, dataset: MSADataset, say: Echo) -> int:
    """Take and train trials until the study is finished; return how many trainings this worker started.

    Raises:
        ExperimentError: a run's folder holds a run on other data, or the trainer
            refused a run (its message names the run); the trial is failed and
            queued again by the next command.
    """
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    plan = job.plan
    trainings = 0
    waited = False
    while True:
        fail_stale_trials(study)
        state = survey(plan, study.get_trials(deepcopy=False))
        if state.finished:
            return trainings
        if not state.claimable:
            if not waited:
                say(f"waiting for {len(state.running) + state.unknown_running} trial(s) running in other workers")
                waited = True
            time.sleep(job.poll_seconds())
            continue
        waited = False
        trial = study.ask()
        try:
            with Heartbeat(study._storage, trial._trial_id):
                key = _suggest(trial, plan)
                holder = _holder(study, plan, trial, key)
                if holder is None:
                    outcome, detail, trained = _run_trial(job, trial, key, dataset, say)
                    trainings += trained
        except BaseException:  # Ctrl-C or a crash: not a result; the next command queues it again
            trial.set_user_attr("outcome", "interrupted")
            finish_trial(study, trial, state=TrialState.FAIL)
            raise
        if holder is not None:
            trial.set_user_attr("duplicate_of", holder)
            finish_trial(study, trial, state=TrialState.FAIL)
            continue
        if outcome == "complete":
            finish_trial(study, trial, value=detail, say=say, label=plan.label(key))
        else:
            trial.set_user_attr("outcome", outcome)
            trial.set_user_attr("error", detail)
            finish_trial(study, trial, state=TrialState.FAIL, say=say, label=plan.label(key))
            if outcome == "error":
                raise ExperimentError(f"run {plan.label(key)}: {detail}")


def _suggest(trial, plan: TrialPlan) -> Key:
    """Set the trial's parameters (from the grid, or those a queued trial carries) and return its (run, seed)."""
    params = {name: trial.suggest_categorical(name, values) for name, values in plan.search_space().items()}
    key = plan.key(params)
    if key is None:  # pragma: no cover - the sampler only hands out points of the plan's space
        raise ExperimentError(f"the study handed out parameters outside this experiment: {params}.")
    return key


def _holder(study, plan: TrialPlan, trial, key: Key, tries: int = 50) -> int | None:
    """The number of another trial that holds ``key`` (a result, or running or queued with a lower number), else None.

    A running trial whose parameters are not set yet is waited for briefly: it
    may be the same (run, seed), and only the lower-numbered of two may go on.
    """
    from optuna.trial import TrialState

    from .trials import is_result

    for _ in range(tries):
        unsure = False
        for other in study.get_trials(deepcopy=False):
            if other.number == trial.number or other.user_attrs.get("duplicate_of") is not None:
                continue
            other_key = trial_key(plan, other)
            if other_key is None:
                unsure = unsure or (other.state == TrialState.RUNNING and other.number < trial.number)
                continue
            if other_key != key:
                continue
            if is_result(other):
                return other.number
            if other.state in (TrialState.RUNNING, TrialState.WAITING) and other.number < trial.number:
                return other.number
        if not unsure:
            return None
        time.sleep(0.1)
    return None


def _run_trial(job: WorkerJob, trial, key: Key, dataset: MSADataset, say: Echo) -> tuple[str, Any, int]:
    """Train (run, seed): ``("complete", best validation loss, trainings)`` or ``(outcome, error text, trainings)``."""
    index, seed = key
    return train_seed(job.runs[index], job.plan.names[index], seed, job.runs_dir, job.base, job.spec, dataset, say,
                      head=f"[trial {trial.number}] {job.plan.label(key)}", verbose=job.verbose)


def train_seed(run, name: str, seed: int, runs_dir: Path, base: TrainSettings, spec: dict[str, Any],
               dataset: MSADataset, say: Echo, *, head: str, verbose: bool = False) -> tuple[str, Any, int]:
    """Train one seed of a run into ``runs_dir/<name>_seed-<seed>`` (read it when finished there, continue it when started).

    Returns:
        ``("complete", best validation loss, trainings started)``, or ``(outcome, error text, trainings)`` with
        outcome ``"failed"`` (a non-finite loss: a result) or ``"error"`` (not a result).
    """
    from .runs import finished_results, started

    folder = trial_folder(runs_dir, name, seed)
    base = base.with_changes(seeds=(seed,))
    start = time.perf_counter()
    try:
        results = finished_results(folder, run.settings(base, folder, resume=False, quiet=True), spec)
    except ExperimentError as error:
        return "error", str(error), 0
    if results is not None:
        say(f"{head}: finished in its folder before (read, not trained)")
        return "complete", _valid_loss(results), 0
    resume = started(folder)
    settings = run.settings(base, folder, resume=resume, quiet=not verbose)
    say(f"{head}: {'continuing the run in its folder' if resume else 'training'}")
    echo = (lambda line: say(f"  {line}")) if verbose else None
    try:
        results = train(settings, dataset, echo=echo)
    except NonFiniteLossError as error:
        say(f"{head}: FAILED after {time.perf_counter() - start:.1f} s: {error}")
        return RESULT_FAILURE, str(error), 1
    except CheckpointError as error:
        return "error", str(error), 1
    loss = _valid_loss(results)
    say(f"{head}: trained in {time.perf_counter() - start:.1f} s, valid loss {loss:.4f}")
    return "complete", loss, 1


def _valid_loss(results: dict[str, Any]) -> float:
    return float(results["seeds"][0]["best_valid_loss"])


def finish_trial(study, trial, *, value: float | None = None, state=None, say: Echo | None = None, label: str = "") -> None:
    """``study.tell``; a trial failed as stale meanwhile (this worker was too slow to beat) is left to its retry.

    The ``GridSampler`` calls ``study.stop()`` after the last grid point, which
    raises outside ``study.optimize``; the trial's state is stored all the same.
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    wanted = TrialState.COMPLETE if state is None else state
    try:
        if state is None:
            study.tell(trial, value)
        else:
            study.tell(trial, state=state)
    except (UpdateFinishedTrialError, RuntimeError, ValueError):
        stored = study._storage.get_trial(trial._trial_id)
        if stored.state == wanted and (state is not None or stored.value == value):
            return
        if say is not None:
            say(f"[trial {trial.number}] {label}: another worker took this trial over (no heartbeat in time); "
                "its retry reads the finished folder")


# --- local worker processes (--jobs N) -------------------------------------------------------------


def run_local_workers(job, count: int, threads: int, echo: Echo, target: Callable | None = None) -> list[int]:
    """Start ``count`` spawned worker processes on the study and relay their lines; return their exit codes.

    ``target(job, threads, lines, index)`` is each process's function (default :func:`worker_main`). Each sets ``torch.set_num_threads(threads)`` (the trainer then applies
    ``base.threads`` when set). A worker that dies leaves its trial to the others.
    """
    context = multiprocessing.get_context("spawn")
    lines = context.Queue()
    processes = [context.Process(target=target or worker_main, args=(job, threads, lines, i), name=f"snn-msa-worker-{i}")
                 for i in range(count)]
    for process in processes:
        process.start()
    try:
        while any(p.is_alive() for p in processes):
            _relay(lines, echo, timeout=0.2)
        _relay(lines, echo, timeout=0.0)
    except BaseException:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=10)
        raise
    for process in processes:
        process.join()
    return [p.exitcode for p in processes]


def _relay(lines, echo: Echo, timeout: float) -> None:
    try:
        while True:
            echo(lines.get(timeout=timeout))
            timeout = 0.0
    except queue_mod.Empty:
        return


def worker_main(job: WorkerJob, threads: int, lines, index: int = 0) -> None:
    """A spawned worker: open the study, load the data, :func:`work`; exit 1 on an expected error.

    ``index`` (the worker's number) is not needed here: the grid sampler hands out each point once.
    """
    run_worker(job, threads, lines, grid_sampler(job.plan), work)


def run_worker(job, threads: int, lines, sampler, work_on: Callable[[Any, Any, MSADataset, Echo], int]) -> None:
    """The body of a spawned worker: ``threads`` torch threads, the study opened with ``sampler``, the data
    loaded again, then ``work_on(job, study, dataset, say)``; exit 1 on an expected error, 130 on Ctrl-C."""
    import sys

    import torch

    from ..data import DataError
    from ..training import TrainingError
    from .study import describe_storage, open_storage, open_study

    torch.set_num_threads(threads)
    say = lines.put
    try:
        storage = open_storage(job.storage, job.out, job.heartbeat)
        study = open_study(storage, job.study, job.identity, sampler, describe_storage(job.storage, job.out))
        work_on(job, study, worker_data(job.spec, job.base.data, job.base.allow_nonfinite), say)
    except (ExperimentError, TrainingError, DataError) as error:
        say(f"worker {os.getpid()} stopped: {error}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


def grid_sampler(plan: TrialPlan):
    """Optuna's ``GridSampler`` over the plan's space (seeded: the order of a fresh study is reproducible)."""
    from optuna.samplers import GridSampler

    return GridSampler(plan.search_space(), seed=0)


def worker_data(spec: dict[str, Any], data_path: str | None, allow_nonfinite: bool = False) -> MSADataset:
    """The experiment's data, loaded again in a worker: the same file and profile, or the same synthetic set."""
    from ..data import DataError, load_dataset

    if data_path is None:
        return load_eval_data(spec)  # rebuilds the built-in synthetic data and checks its fingerprints
    dataset = load_dataset(os.path.expanduser(data_path), spec["profile"], allow_nonfinite=allow_nonfinite)
    if data_spec(dataset, data_path)["fingerprints"] != spec["fingerprints"]:
        raise DataError(f"{data_path} changed while the experiment ran; run it again.")
    return dataset

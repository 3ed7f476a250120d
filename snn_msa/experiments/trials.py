"""The trials of an experiment: one per (run, seed), named by Optuna parameters, and what state each is in.

A grid cell's parameters are ``{"scale1": 0.5, "strength": 0.01, "seed": 1111}``;
a run of the ablation or the comparison is ``{"model": "sgmt-av", "seed": 1111}``.
The search space is every run's values times the seeds, and Optuna's
``GridSampler`` walks it. Each (run, seed) trains into its own folder,
``DIR/runs/<run name>_seed-<seed>/``, so that workers never share one.

A trial's outcome is stored in its user attributes:

- ``COMPLETE``: trained; its value is the seed's best validation loss;
- ``FAIL`` with ``outcome = "failed"``: the loss became NaN or infinite (a
  result: reported in the tables, not retried);
- ``FAIL`` with ``outcome = "error"`` or ``"interrupted"``, or failed as stale
  (no heartbeat): not a result; queued again;
- ``FAIL`` with ``duplicate_of``: a worker was handed a (run, seed) that another
  trial holds, and stood down without training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .errors import ExperimentError

SEED_PARAM = "seed"
RESULT_FAILURE = "failed"
Key = tuple[int, int]  # (run index, seed)


@dataclass(frozen=True)
class TrialPlan:
    """Every (run, seed) of an experiment as Optuna parameters, and the way back from parameters to a run.

    Attributes:
        params: per run, its searched parameters (without the seed).
        seeds: the seeds every run trains.
        names: per run, its folder name.
    """

    params: tuple[Mapping[str, Any], ...]
    seeds: tuple[int, ...]
    names: tuple[str, ...]
    _index: dict[tuple, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for index, params in enumerate(self.params):
            signature = self._signature(params)
            if signature in self._index:
                raise ExperimentError(f"the same setting is asked for twice ({self.names[index]}); list each value once.")
            self._index[signature] = index
        if _product(self.space_size()) != len(self.params) * len(self.seeds):
            raise ExperimentError("the runs of an experiment must form a full grid of their parameters.")

    @staticmethod
    def _signature(params: Mapping[str, Any]) -> tuple:
        return tuple(sorted((k, v) for k, v in params.items() if k != SEED_PARAM))

    def search_space(self) -> dict[str, list]:
        """The grid Optuna's ``GridSampler`` walks: each parameter's values (in first-seen order) and the seeds."""
        space: dict[str, list] = {}
        for params in self.params:
            for name, value in params.items():
                values = space.setdefault(name, [])
                if value not in values:
                    values.append(value)
        space[SEED_PARAM] = list(self.seeds)
        return space

    def space_size(self) -> list[int]:
        return [len(v) for v in self.search_space().values()]

    def keys(self) -> list[Key]:
        """Every (run index, seed), run by run."""
        return [(index, seed) for index in range(len(self.params)) for seed in self.seeds]

    def key(self, params: Mapping[str, Any] | None) -> Key | None:
        """The (run index, seed) of a trial's parameters; ``None`` when they are not all set yet or not in the plan."""
        if not params or SEED_PARAM not in params:
            return None
        index = self._index.get(self._signature(params))
        if index is None or params[SEED_PARAM] not in self.seeds:
            return None
        return index, params[SEED_PARAM]

    def trial_params(self, key: Key) -> dict[str, Any]:
        """The Optuna parameters of (run index, seed)."""
        index, seed = key
        return {**self.params[index], SEED_PARAM: seed}

    def label(self, key: Key) -> str:
        """``sgmt-tav_scale1-0.5_strength-0 seed 1111``."""
        return f"{self.names[key[0]]} seed {key[1]}"


def trial_folder(runs_dir: Path, name: str, seed: int) -> Path:
    """Where (run, seed) trains: ``runs/<name>_seed-<seed>``."""
    return runs_dir / f"{name}_seed-{seed}"


def trial_key(plan: TrialPlan, trial) -> Key | None:
    """A trial's (run index, seed), from its parameters or, for a queued one, the parameters it will get."""
    return plan.key(trial.params or trial.system_attrs.get("fixed_params"))


def is_result(trial) -> bool:
    """Whether a finished trial is a result: trained (``COMPLETE``) or failed with a non-finite loss."""
    from optuna.trial import TrialState

    return trial.state == TrialState.COMPLETE or (
        trial.state == TrialState.FAIL and trial.user_attrs.get("outcome") == RESULT_FAILURE)


@dataclass
class Survey:
    """Where the study stands: which (run, seed) have a result, which run, which wait, which nobody holds.

    Attributes:
        results: (run, seed) -> its result trial (the first if there were several).
        running: (run, seed) held by a running trial; ``unknown_running`` counts running
            trials whose parameters are not set yet.
        waiting: queued trials (retries, requeued runs).
        untouched: (run, seed) with no trial at all.
        abandoned: (run, seed) whose every trial failed without a result (errors,
            interruptions, or stale beyond the retries), with its last trial.
    """

    results: dict[Key, Any]
    running: set[Key]
    unknown_running: int
    waiting: int
    untouched: list[Key]
    abandoned: dict[Key, Any]

    @property
    def finished(self) -> bool:
        """Nothing more will happen without a new command: no trial runs, waits or is still to start."""
        return not self.running and not self.unknown_running and not self.waiting and not self.untouched

    @property
    def claimable(self) -> bool:
        """Whether a worker that asks now may get work."""
        return bool(self.waiting or self.untouched)


def survey(plan: TrialPlan, trials: Sequence[Any]) -> Survey:
    """Sort the study's trials by (run, seed) and state."""
    from optuna.trial import TrialState

    results: dict[Key, Any] = {}
    running: set[Key] = set()
    unknown = waiting = 0
    seen: dict[Key, Any] = {}
    held: set[Key] = set()
    for trial in sorted(trials, key=lambda t: t.number):
        key = trial_key(plan, trial)
        if trial.state == TrialState.RUNNING:
            if key is None:
                unknown += 1
            else:
                running.add(key)
        if key is None:
            continue
        if trial.state == TrialState.WAITING:
            waiting += 1
            held.add(key)
        if trial.user_attrs.get("duplicate_of") is not None:
            continue
        seen[key] = trial
        if is_result(trial):
            results.setdefault(key, trial)
    held |= running | set(results)
    untouched = [k for k in plan.keys() if k not in seen and k not in held]
    abandoned = {k: t for k, t in seen.items() if k not in held}
    return Survey(results, running, unknown, waiting, untouched, abandoned)


def _product(sizes: list[int]) -> int:
    total = 1
    for size in sizes:
        total *= size
    return total

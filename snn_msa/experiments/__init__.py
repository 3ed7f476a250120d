"""The paper's experiments on any data, one call each: grid (Table 4, Figure 3), ablation (Table 3), comparison.

>>> from snn_msa.experiments import grid_runs
>>> [run.name(TrainSettings(model="sgmt-tav")) for run in grid_runs("sgmt-tav", [0.5, 1.0], [0.0])]
['sgmt-tav_scale1-0.5_strength-0', 'sgmt-tav_scale1-1_strength-0']

- :func:`run_grid`: every (scale1, strength) cell; the best by validation loss;
  ``grid.csv``, ``grid.md``, ``grid.png``.
- :func:`run_ablation`: sgmt-tav against sgmt-av, sgmt-tv, sgmt-ta;
  ``ablation.csv``, ``ablation.md``.
- :func:`run_comparison`: any zoo models with their energy per sample;
  ``compare.csv``, ``compare.md``.

Each takes a :class:`~snn_msa.training.TrainSettings` that every run shares
(data, seeds, epochs, recipe, device, model overrides) and an output folder.
Each (run, seed) is a trial of an Optuna study (:mod:`.study`, :mod:`.trials`)
in ``DIR/study.journal`` or ``storage=``, trained by workers (:mod:`.worker`)
into ``DIR/runs/<name>_seed-<seed>/``: workers anywhere share one study,
``jobs=N`` starts N local ones, a killed worker's trial is taken over, and
the same call on a finished study trains nothing and only rebuilds the tables.
"""

from ..training import TrainSettings
from .ablate import ABLATION, run_ablation
from .compare import DEFAULT_MODELS, ENERGY_SAMPLES, run_comparison
from .errors import ExperimentError
from .grid import PAPER_SCALE1, PAPER_STRENGTH, grid_runs, run_grid, select_best
from .runs import Run, RunOutcome, execute_runs, run_name
from .study import DEFAULT_HEARTBEAT, open_storage

__all__ = [
    "ABLATION",
    "DEFAULT_HEARTBEAT",
    "DEFAULT_MODELS",
    "ENERGY_SAMPLES",
    "ExperimentError",
    "PAPER_SCALE1",
    "PAPER_STRENGTH",
    "Run",
    "RunOutcome",
    "TrainSettings",
    "execute_runs",
    "grid_runs",
    "open_storage",
    "run_ablation",
    "run_comparison",
    "run_grid",
    "run_name",
    "select_best",
]
